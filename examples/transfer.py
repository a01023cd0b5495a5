r"""Distillation with few labels and many unlabeled inputs (a transfer set), with the default Distiller.

Two regimes, each over several seeds (the teacher is trained once; the seeds vary the students):

    python -m examples.transfer --regime=mnist1d
    python -m examples.transfer --regime=fashion --dataset=fashion_mnist

- ``mnist1d``: MNIST-1D (Greydanus 2020), 4,000 labeled training examples. The teacher is the example
  1-D CNN; the student is an MLP (the published MLP baseline is 68 +- 2 %). The transfer set is
  ``--transfer_size`` extra inputs drawn from the ``mnist1d`` generator with another seed.
- ``fashion``: the teacher (the example CNN) trains on every training image; the student, the same
  MLP, sees ``--labeled`` of them with labels. Rows: the student from scratch on the labeled
  images; the default Distiller on the same images at equal epochs; the default Distiller with
  every other training image as an unlabeled transfer set; and with consistent augmentation
  (random shifts that teacher and student see alike, Beyer et al. 2022).

Every distilled row uses ``keras_kd.Distiller``'s defaults (DIST at T=4, alpha=0.5;
``--temperature`` switches to Hinton's ``LogitsKD`` at that temperature). The script
prints a markdown table (mean +- std test accuracy over seeds) and, last, one JSON object with
``regime``, ``teacher_acc`` and ``rows`` (name -> list of accuracies per seed).
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)


import numpy as np
from absl import flags, logging

import keras_kd as kd
from examples import common_flags
from examples.models import make_mlp, train_teacher
from keras_kd import keras

FLAGS = flags.FlagValues()
flags.DEFINE_enum(
    "regime", "mnist1d", ["mnist1d", "fashion"], "Which experiment to run.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "labeled",
    5000,
    "Labeled training images the student sees (fashion).",
    lower_bound=1,
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "transfer_size",
    40000,
    "Generated unlabeled inputs in the transfer set (mnist1d).",
    lower_bound=0,
    flag_values=FLAGS,
)


def mnist1d_transfer_set(size, seed=1234):
    """Generates ``size`` unlabeled MNIST-1D inputs with a generator seed other than the dataset's.

    Args:
        size: Number of inputs, >= 1.
        seed: Generator seed; the default differs from ``keras_kd.data.load("mnist1d")``'s 42.

    Returns:
        A float32 array of shape ``(size, 40, 1)``.

    Raises:
        ValueError: If ``size`` < 1.

    Example:
        >>> x_transfer = mnist1d_transfer_set(1000)
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, received: size={size!r}")
    total = size + 10  # a few extra, so that the generator's train split holds at least ``size``
    (x, _), _ = kd.data.load_mnist1d(seed=seed, num_samples=total, train_split=1 - 5 / total)
    return x[:size]


def image_augmentation(max_shift=0.1, seed=None):
    """Random shifts and horizontal flips for a Distiller's ``augment`` (teacher and student see each alike).

    Args:
        max_shift: Largest shift as a fraction of height and width.
        seed: Seed of the random layers.

    Returns:
        A ``keras.Sequential`` of random image layers.

    Example:
        >>> distiller = kd.Distiller(student, teacher, augment=image_augmentation())
    """
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(max_shift, max_shift, fill_mode="constant", seed=seed),
        ],
        name="augment",
    )


def _distiller_kwargs(temperature, alpha):
    """Only the settings given: everything else stays at the Distiller's defaults."""
    kwargs = {} if alpha is None else {"alpha": alpha}
    if temperature is not None:
        kwargs["losses"] = [kd.losses.LogitsKD(temperature)]
    return kwargs


def _train(
    make_model,
    teacher,
    x,
    y,
    x_test,
    y_test,
    epochs,
    batch_size,
    seed,
    distill,
    augment=None,
    temperature=None,
    alpha=None,
    verbose=0,
):
    keras.utils.set_random_seed(seed)
    student = make_model()
    if distill:
        model = kd.Distiller(
            student, teacher, augment=augment, **_distiller_kwargs(temperature, alpha)
        )
    else:
        model = student
    model.compile(keras.optimizers.Adam(1e-3), kd.recipes.hard_loss(), metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=verbose)
    return float(model.evaluate(x_test, y_test, verbose=0)[1])


@common_flags.with_settings(
    "verbose",
    dataset="fashion_mnist",
    epochs=30,
    teacher_epochs=30,
    batch_size=128,
    temperature=None,
    alpha=None,
    seeds=3,
    output_dir="keras_kd_runs/transfer",
)
def run(s, regime="mnist1d", labeled=5000, transfer_size=40000):
    """Runs one regime and returns ``{"regime", "teacher_acc", "rows": {name: [accuracy per seed]}}``.

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    ``verbose`` is Keras ``fit``'s (0 silent, 1 progress bars, 2 a line per epoch).
    """
    if regime == "mnist1d":
        (x, y), (x_test, y_test) = kd.data.load("mnist1d")
        x_labeled, y_labeled = x, y
        x_unlabeled = mnist1d_transfer_set(transfer_size) if transfer_size else x[:0]

        def make_model():
            return make_mlp(x.shape[1:], 10)

        teacher_path = os.path.join(s.output_dir, "mnist1d_teacher.keras")
    else:
        (x, y), (x_test, y_test) = kd.data.load(s.dataset)
        if labeled > len(x):
            raise ValueError(
                f"labeled must be <= the {len(x)} training examples, received: labeled={labeled}"
            )
        order = np.random.default_rng(0).permutation(len(x))
        x_labeled, y_labeled = x[order[:labeled]], y[order[:labeled]]
        x_unlabeled = x[order[labeled:]]

        def make_model():
            return make_mlp(x.shape[1:], int(y.max()) + 1)

        teacher_path = os.path.join(
            s.output_dir, f"{s.dataset.replace(':', '_').replace('/', '_')}_teacher.keras"
        )
    teacher = train_teacher(
        x, y, s.teacher_epochs, batch_size=s.batch_size, learning_rate=1e-3, verbose=s.verbose,
        seed=0, path=teacher_path,
    )  # fmt: skip
    teacher_acc = float(teacher.evaluate(x_test, y_test, verbose=0)[1])
    logging.info("teacher accuracy %.4f", teacher_acc)
    x_all, y_all = kd.data.with_unlabeled(x_labeled, y_labeled, x_unlabeled)
    rows = {
        "scratch (labeled only)": [],
        "distilled (labeled only)": [],
        "distilled + transfer set": [],
    }
    if regime == "fashion":
        rows["distilled + consistent augmentation"] = []
    common = {
        "x_test": x_test,
        "y_test": y_test,
        "epochs": s.epochs,
        "batch_size": s.batch_size,
        "temperature": s.temperature,
        "alpha": s.alpha,
        "verbose": s.verbose,
    }
    for seed in range(s.seeds):
        rows["scratch (labeled only)"].append(
            _train(make_model, teacher, x_labeled, y_labeled, seed=seed, distill=False, **common)
        )
        rows["distilled (labeled only)"].append(
            _train(make_model, teacher, x_labeled, y_labeled, seed=seed, distill=True, **common)
        )
        rows["distilled + transfer set"].append(
            _train(make_model, teacher, x_all, y_all, seed=seed, distill=True, **common)
        )
        if regime == "fashion":
            rows["distilled + consistent augmentation"].append(
                _train(
                    make_model,
                    teacher,
                    x_labeled,
                    y_labeled,
                    seed=seed,
                    distill=True,
                    augment=image_augmentation(seed=seed),
                    **common,
                )
            )
        logging.info("seed %d: %s", seed, {k: v[-1] for k, v in rows.items()})
    return {
        "regime": regime,
        "teacher_acc": teacher_acc,
        "temperature": s.temperature,
        "alpha": s.alpha,
        "labeled": int(len(x_labeled)),
        "unlabeled": int(len(x_unlabeled)),
        "epochs": s.epochs,
        "rows": rows,
    }


def markdown(result):
    """Formats ``run``'s result as a markdown table of mean +- std accuracy."""
    lines = ["| student | test accuracy (mean ± std) | vs scratch |", "| --- | --- | --- |"]
    scratch = np.mean(result["rows"]["scratch (labeled only)"])
    for name, accuracies in result["rows"].items():
        mean, std = np.mean(accuracies), np.std(accuracies)
        lines.append(f"| {name} | {mean:.4f} ± {std:.4f} | {100 * (mean - scratch):+.1f} pt |")
    return "\n".join(lines)


common_flags.define(FLAGS, run)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    result = run(**common_flags.arguments(run, FLAGS))
    common_flags.print_result(
        result,
        f"teacher accuracy {result['teacher_acc']:.4f}; {result['labeled']} labeled, "
        f"{result['unlabeled']} unlabeled, {result['epochs']} epochs",
        markdown(result),
    )


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
