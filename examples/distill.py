r"""Trains a CNN teacher and a much smaller student from scratch and by distillation; compares them.

The main job of keras_kd. On the embedded ``digits`` dataset it runs in well under a minute on two
CPU cores:

    python -m examples.distill
    python -m examples.distill --dataset=fashion_mnist --epochs=10
    python examples/distill.py --epochs=5      # run as a file: the same flags
    python -m examples.distill --method=at --pairs=t_block1:s_block1,t_block2:s_block2
    python -m examples.distill --method=fsp --teacher_width=16     # FSP needs equal channel counts
    python -m examples.distill --scheme=born_again

``--method`` picks the distillation losses (``examples/methods.py``: Hinton KD plus the method's
loss; ``dkd`` and ``dist`` replace Hinton KD), ``--scheme`` a training scheme of
``keras_kd.schemes``.

The scratch and the distilled student start from the same initial weights and train for the same
number of epochs with the same seed. The last line of output is one JSON object with
``teacher_acc``, ``scratch_acc``, ``distilled_acc``, ``teacher_params``, ``student_params`` and
``student_path``.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json

from absl import app, flags, logging

import keras_kd as kd
from examples import common_flags, methods
from examples.models import make_student, make_teacher, train_teacher
from keras_kd import keras

FLAGS = flags.FlagValues()
flags.DEFINE_enum(
    "method",
    "dist",
    list(methods.METHODS),
    "Distillation method (keras_kd.losses.get name). dist (beta=gamma=2), T=4 and alpha=0.5 are "
    "the library's measured defaults; with a --scheme other than none or self_compress, the "
    "method is kd unless given.",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "pairs",
    "",
    "Layer pairs teacher:student,... for feature/relational methods (default: the example layers).",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "loss_weight",
    None,
    "Weight of the method's own loss (default: its recipe).",
    lower_bound=0.0,
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "scheme",
    "none",
    list(methods.SCHEMES),
    "Training scheme (keras_kd.schemes) instead of one Distiller.",
    flag_values=FLAGS,
)
flags.register_validator(
    "pairs",
    lambda text: _parses(text),
    message="--pairs must look like t_a:s_a,t_b:s_b",
    flag_values=FLAGS,
)


def _parses(text):
    try:
        methods.parse_pairs(text)
    except ValueError:
        return False
    return True


def _fit(distiller, x, y, epochs, batch_size, learning_rate, verbose):
    distiller.compile(
        keras.optimizers.Adam(learning_rate), kd.recipes.hard_loss(), metrics=["accuracy"]
    )
    distiller.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=verbose)


@common_flags.with_settings(
    "dataset batch_size learning_rate temperature seed student_width verbose",
    epochs=40,
    teacher_epochs=20,
    alpha=0.5,
    teacher_width=64,
    output_dir="keras_kd_runs/distill",
)
def run(s, method="dist", pairs=None, loss_weight=None, scheme="none"):
    """Runs teacher, scratch student and distilled student; returns the results dict (see module doc).

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    ``method`` and ``pairs`` choose the distillation losses (``examples.methods.make_losses``);
    ``scheme`` trains the student by a ``keras_kd.schemes`` scheme instead of one Distiller
    (``multi_teacher`` adds a second, narrower teacher).
    """
    (x_train, y_train), (x_test, y_test) = kd.data.load(s.dataset)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    distiller_args = methods.make_losses(method, s.temperature, s.alpha, pairs, loss_weight)
    keras.utils.set_random_seed(s.seed)
    logging.info("Training the teacher on %s (%d examples)", s.dataset, len(x_train))
    fit = dict(batch_size=s.batch_size, learning_rate=s.learning_rate, verbose=s.verbose)
    teacher = train_teacher(
        x_train, y_train, s.teacher_epochs, s.teacher_width, num_classes=num_classes, **fit
    )
    teacher_acc = teacher.evaluate(x_test, y_test, verbose=0)[1]

    keras.utils.set_random_seed(s.seed + 1)
    scratch = make_student(x_train.shape[1:], num_classes, width=s.student_width)
    initial_weights = scratch.get_weights()
    distilled = keras.models.clone_model(scratch)
    distilled.set_weights(initial_weights)
    # Losses check layer names and shapes when the Distiller is made: before any student training.
    distiller = None
    if scheme in ("none", "self_compress"):
        distiller = kd.Distiller(student=distilled, teacher=teacher, **distiller_args)

    logging.info("Training the student from scratch")
    keras.utils.set_random_seed(s.seed + 2)
    kd.recipes.train_classifier(scratch, x_train, y_train, s.epochs, schedule="constant", **fit)
    scratch_acc = scratch.evaluate(x_test, y_test, verbose=0)[1]

    keras.utils.set_random_seed(s.seed + 2)
    if distiller is not None:
        logging.info(
            "Distilling the student (method=%s, T=%s, alpha=%s)", method, s.temperature, s.alpha
        )
        _fit(distiller, x_train, y_train, s.epochs, **fit)
    if scheme == "multi_teacher":
        second = train_teacher(
            x_train, y_train, s.teacher_epochs, s.teacher_width // 2, num_classes=num_classes, **fit
        )
        _fit(
            kd.Distiller(distilled, [teacher, second], alpha=s.alpha),
            x_train,
            y_train,
            s.epochs,
            **fit,
        )
    elif scheme != "none":
        logging.info("Training the student by the %s scheme", scheme)
        distilled = methods.train_with_scheme(
            scheme,
            teacher,
            distilled,
            (x_train, y_train),
            s.epochs,
            s.batch_size,
            s.learning_rate,
            s.temperature,
            s.alpha,
        )
    distilled.compile(loss=kd.recipes.hard_loss(), metrics=["accuracy"])
    distilled_acc = distilled.evaluate(x_test, y_test, verbose=0)[1]

    os.makedirs(s.output_dir, exist_ok=True)
    student_path = os.path.join(s.output_dir, "student.keras")
    distilled.save(student_path)
    teacher.save(os.path.join(s.output_dir, "teacher.keras"))
    return {
        "teacher_acc": float(teacher_acc),
        "scratch_acc": float(scratch_acc),
        "distilled_acc": float(distilled_acc),
        "teacher_params": int(teacher.count_params()),
        "student_params": int(distilled.count_params()),
        "student_path": os.path.abspath(student_path),
    }


def check_method_flags(
    dataset, method, pairs, loss_weight, scheme, temperature, alpha, teacher_width, student_width
):
    """Raises ``app.UsageError`` for flags that parse but cannot work together, before training.

    The losses are built against untrained copies of the example models, so ``--pairs`` naming a
    layer the models lack fails here, not after the teacher has trained.
    """
    if pairs and method in ("kd", "dkd", "dist"):
        raise app.UsageError(
            f"--pairs is used only by feature and relational methods, received: --method={method}"
        )
    if method != "kd" and scheme not in ("none", "self_compress"):
        raise app.UsageError(
            f"--method={method} applies only with --scheme=none or self_compress, received: "
            f"--scheme={scheme}"
        )
    (x, y), _ = kd.data.load(dataset)
    shape, classes = x.shape[1:], int(y.max()) + 1
    try:
        kd.Distiller(
            student=make_student(shape, classes, width=student_width),
            teacher=make_teacher(shape, classes, width=teacher_width),
            **methods.make_losses(method, temperature, alpha, pairs, loss_weight),
        )
    except ValueError as error:
        text = ",".join(f"{t}:{s}" for t, s in pairs) if pairs else "(the method's default)"
        raise app.UsageError(f"--pairs={text} or --method={method}: {error}") from None


common_flags.define(FLAGS, run)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    settings = common_flags.arguments(run, FLAGS)
    if not FLAGS["method"].present and settings["scheme"] not in ("none", "self_compress"):
        settings["method"] = "kd"  # schemes distill with LogitsKD
    settings["pairs"] = methods.parse_pairs(settings["pairs"])
    check_method_flags(
        *(settings[k] for k in ("dataset", "method", "pairs", "loss_weight", "scheme")),
        *(settings[k] for k in ("temperature", "alpha", "teacher_width", "student_width")),
    )
    result = run(**settings)
    print(
        f"teacher   accuracy {result['teacher_acc']:.4f}  ({result['teacher_params']:,} parameters)"
    )
    print(
        f"scratch   accuracy {result['scratch_acc']:.4f}  ({result['student_params']:,} parameters)"
    )
    print(f"distilled accuracy {result['distilled_acc']:.4f}  saved to {result['student_path']}")
    print(json.dumps(result))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
