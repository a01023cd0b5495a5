r"""Compares distillation methods on one teacher/student pair: equal epochs, several seeds.

    python -m examples.benchmark --dataset=fashion_mnist --train_size=5000

For every seed the example student (``examples/models.py``) starts from the same initial weights in
every row and trains ``--epochs`` epochs: from scratch, and by each method of ``--methods``
(``examples/methods.py``: the Distiller's default DIST term plus the method's own loss; ``kd`` is
Hinton KD at the same temperature and alpha). The teacher, the example CNN,
trains once on every training example and is reused for all seeds; ``fsp`` needs equal channel
counts, so its row distills from a teacher of the student's widths (its accuracy is reported too).
The student sees ``--train_size`` labeled examples. Writes ``benchmark.json`` and
``benchmark.md`` to ``--output_dir``, prints the table, and ends with one JSON line.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import time

import numpy as np
from absl import flags, logging

import keras_kd as kd
from examples import common_flags, methods
from examples.models import make_student, train_teacher
from keras_kd import keras

FLAGS = flags.FlagValues()
flags.DEFINE_list(
    "methods", list(methods.METHODS), "Methods to compare with scratch.", flag_values=FLAGS
)
flags.register_validator(
    "methods",
    lambda names: bool(names) and set(names) <= set(methods.METHODS),
    message=f"--methods must be one or more names from {list(methods.METHODS)}",
    flag_values=FLAGS,
)


class _EpochSeconds(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


@common_flags.with_settings(
    "epochs teacher_epochs learning_rate temperature verbose",
    alpha=0.5,  # with temperature 4, the Distiller's defaults (keras_kd.losses.defaults)
    dataset="fashion_mnist",
    train_size=5000,
    batch_size=128,
    seeds=3,
    output_dir="keras_kd_runs/benchmark",
)
def run(s, method_names=methods.METHODS):
    """Runs scratch and every method for each seed; returns the table as a dict (see module doc).

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    ``verbose`` is Keras ``fit``'s (0 silent, 1 progress bars, 2 a line per epoch).
    """
    (x, y), (x_test, y_test) = kd.data.load(s.dataset)
    os.makedirs(s.output_dir, exist_ok=True)
    order = np.random.default_rng(0).permutation(len(x))[: s.train_size or len(x)]
    x_small, y_small = x[order], y[order]
    classes = int(max(y.max(), y_test.max())) + 1
    # The example CNN teacher, trained as examples/transfer.py trains it (Adam 1e-3, seed 0).
    teacher = dict(batch_size=s.batch_size, learning_rate=1e-3, verbose=s.verbose, seed=0)
    path = os.path.join(s.output_dir, "teacher.keras")
    teachers = {"default": train_teacher(x, y, s.teacher_epochs, 64, path=path, **teacher)}
    if "fsp" in method_names:
        path = os.path.join(s.output_dir, "teacher_w16.keras")
        teachers["fsp"] = train_teacher(x, y, s.teacher_epochs, 16, path=path, **teacher)
    rows = {name: {"accuracy": [], "seconds_per_epoch": []} for name in ["scratch", *method_names]}
    for seed in range(s.seeds):
        keras.utils.set_random_seed(seed + 1)
        initial = make_student(x.shape[1:], classes)
        for name in rows:
            student = keras.models.clone_model(initial)
            student.set_weights(initial.get_weights())
            if name == "scratch":
                model = student
            else:
                teacher = teachers.get(name, teachers["default"])
                model = kd.Distiller(
                    student, teacher, **methods.make_losses(name, s.temperature, s.alpha)
                )
            model.compile(
                keras.optimizers.Adam(s.learning_rate), kd.recipes.hard_loss(), metrics=["accuracy"]
            )
            timer = _EpochSeconds()
            keras.utils.set_random_seed(seed + 2)
            model.fit(
                x_small,
                y_small,
                epochs=s.epochs,
                batch_size=s.batch_size,
                verbose=s.verbose,
                callbacks=[timer],
            )
            accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
            rows[name]["accuracy"].append(accuracy)
            rows[name]["seconds_per_epoch"].append(float(np.median(timer.seconds)))
            logging.info("seed %d %s: %.4f", seed, name, accuracy)
    teacher_acc = {k: float(t.evaluate(x_test, y_test, verbose=0)[1]) for k, t in teachers.items()}
    result = {
        "dataset": s.dataset,
        "train_size": len(x_small),
        "epochs": s.epochs,
        "seeds": s.seeds,
        "temperature": s.temperature,
        "alpha": s.alpha,
        "teacher_acc": teacher_acc,
        "rows": rows,
    }
    return common_flags.write_result(s.output_dir, "benchmark", result, markdown(result))


def markdown(result):
    """Formats ``run``'s result: mean ± std accuracy, seconds per epoch, and the gain over scratch."""
    scratch = np.mean(result["rows"]["scratch"]["accuracy"])
    lines = [
        "| method | test accuracy (mean ± std) | vs scratch | s / epoch | beats scratch |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in result["rows"].items():
        mean, std = np.mean(row["accuracy"]), np.std(row["accuracy"])
        verdict = "-" if name == "scratch" else ("yes" if mean > scratch else "no")
        lines.append(
            f"| {name} | {mean:.4f} ± {std:.4f} | {100 * (mean - scratch):+.1f} pt | "
            f"{np.mean(row['seconds_per_epoch']):.2f} | {verdict} |"
        )
    return "\n".join(lines)


common_flags.define(FLAGS, run)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    result = run(**common_flags.arguments(run, FLAGS, method_names="methods"))
    common_flags.print_result(
        result,
        f"teachers {result['teacher_acc']}; {result['train_size']} training examples, "
        f"{result['epochs']} epochs",
        markdown(result),
    )


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
