r"""What ``keras_kd.resilience.enable_determinism`` costs: distillation speed with and without it.

    nice -n 10 python -m examples.benchmark_determinism --train_size=10000 --epochs=4

Each mode runs in its own subprocess (op determinism cannot be turned off once on): the same
seeded teacher, student, data and Distiller (teacher outputs cached), once with only
``keras.utils.set_random_seed`` and once with ``enable_determinism`` (seeds plus
``tf.config.experimental.enable_op_determinism``). Seconds per epoch are the median over the epochs
after the first (which includes tracing). Each mode also trains twice more for two epochs to check
whether it repeats itself bit for bit. The last line is JSON with ``nondeterministic_s``,
``deterministic_s``, ``slowdown`` (their ratio) and ``*_repeatable``.
Keras trains silently whatever ``--verbose`` says: progress output would be timed too.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json
import subprocess
import time

import numpy as np
from absl import flags, logging

import keras_kd as kd
from examples import common_flags
from examples.models import make_student, make_teacher
from keras_kd import keras, resilience

FLAGS = flags.FlagValues()
flags.DEFINE_enum(
    "determinism_mode",
    "both",
    ["both", "on", "off"],
    "Internal: run one mode (on/off) and print its JSON; both runs each in a subprocess.",
    flag_values=FLAGS,
)


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _train(x, y, epochs, batch_size, seed, teacher_width, student_width, callbacks=()):
    keras.utils.set_random_seed(seed)
    num_classes = int(y.max()) + 1
    teacher = make_teacher(x.shape[1:], num_classes, width=teacher_width)
    student = make_student(x.shape[1:], num_classes, width=student_width)
    distiller = kd.Distiller(student, teacher, alpha=0.1)
    distiller.compile(keras.optimizers.Adam(1e-3), kd.recipes.hard_loss())
    distiller.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=list(callbacks))
    return student.get_weights()


def run_mode(deterministic, dataset, train_size, epochs, batch_size, seed, widths):
    """Times one mode in this process; returns ``{"seconds": s, "repeatable": bool}``."""
    if deterministic:
        resilience.enable_determinism(seed)
    (x, y), _ = kd.data.load(dataset)
    if train_size:
        x, y = x[:train_size], y[:train_size]
    timer = _EpochTimer()
    _train(x, y, epochs, batch_size, seed, *widths, callbacks=[timer])
    first = _train(x[:2048], y[:2048], 2, batch_size, seed, *widths)
    second = _train(x[:2048], y[:2048], 2, batch_size, seed, *widths)
    return {
        "seconds": float(np.median(timer.seconds[1:])),
        "repeatable": all(np.array_equal(a, b) for a, b in zip(first, second)),
    }


@common_flags.with_settings(
    "seed teacher_width",
    dataset="fashion_mnist",
    train_size=10000,
    epochs=4,
    batch_size=128,
    student_width=8,
)
def run(s):
    """Runs both modes, each in a subprocess, and returns the results dict (see module doc).

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).
    """
    kd.data.load(s.dataset)  # a missing dataset fails here, in one line, not in a subprocess
    results = {}
    for mode in ("off", "on"):
        command = [
            sys.executable,
            "-m",
            "examples.benchmark_determinism",
            f"--determinism_mode={mode}",
            f"--dataset={s.dataset}",
            f"--train_size={s.train_size}",
            f"--epochs={s.epochs}",
            f"--batch_size={s.batch_size}",
            f"--seed={s.seed}",
            f"--teacher_width={s.teacher_width}",
            f"--student_width={s.student_width}",
        ]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        logging.info("Running %s", " ".join(command))
        output = subprocess.run(
            command, cwd=root, check=True, capture_output=True, text=True
        ).stdout
        results[mode] = json.loads(output.strip().splitlines()[-1])
    return {
        "nondeterministic_s": results["off"]["seconds"],
        "deterministic_s": results["on"]["seconds"],
        "slowdown": results["on"]["seconds"] / results["off"]["seconds"],
        "nondeterministic_repeatable": results["off"]["repeatable"],
        "deterministic_repeatable": results["on"]["repeatable"],
    }


common_flags.define(FLAGS, run)
flags.register_validator(
    "epochs",
    lambda epochs: epochs >= 2,
    "--epochs must be >= 2 (the first epoch is not timed)",
    flag_values=FLAGS,
)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    args = common_flags.arguments(run_mode, FLAGS)
    widths = (FLAGS.teacher_width, FLAGS.student_width)
    if FLAGS.determinism_mode != "both":
        result = run_mode(FLAGS.determinism_mode == "on", widths=widths, **args)
    else:
        result = run(**args, teacher_width=widths[0], student_width=widths[1])
        print(
            f"seconds per epoch: {result['nondeterministic_s']:.3f} without, "
            f"{result['deterministic_s']:.3f} with determinism ({result['slowdown']:.2f}x)"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
