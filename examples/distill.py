r"""Trains a CNN teacher and a much smaller student from scratch and by distillation; compares them.

The main job of keras_kd. On the embedded ``digits`` dataset it runs in well under a minute on two
CPU cores:

    python -m examples.distill
    python -m examples.distill --dataset=idx:/usr/share/datasets/fashion-mnist --epochs=10

The scratch and the distilled student start from the same initial weights and train for the same
number of epochs with the same seed. The last line of output is one JSON object with
``teacher_acc``, ``scratch_acc``, ``distilled_acc``, ``teacher_params``, ``student_params`` and
``student_path``.
"""

import json
import os

from absl import app, flags, logging

import keras_kd as kd
from examples.models import make_student, make_teacher
from keras_kd import keras

_DATASET = flags.DEFINE_string("dataset", "digits", "Dataset for keras_kd.data.load: digits, mnist1d, idx:<dir>, tfds:<name>.")
_EPOCHS = flags.DEFINE_integer("epochs", 40, "Epochs for each student (scratch and distilled).", lower_bound=1)
_TEACHER_EPOCHS = flags.DEFINE_integer("teacher_epochs", 20, "Epochs for the teacher.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Batch size.", lower_bound=1)
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 3e-3, "Adam learning rate.", lower_bound=0.0)
_TEMPERATURE = flags.DEFINE_float("temperature", 4.0, "Distillation temperature T.", lower_bound=1e-6)
_ALPHA = flags.DEFINE_float("alpha", 0.1, "Weight of the hard-label loss.", lower_bound=0.0, upper_bound=1.0)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "keras_kd_runs/distill", "Where to save the models.")
_VERBOSE = flags.DEFINE_enum("verbose", "2", ["0", "1", "2"], "Keras verbosity: 0 silent, 1 progress bar, 2 a line per epoch.")

flags.register_validator(
    "dataset", kd.data.is_valid_name, message=f"--dataset must be one of {list(kd.data.NAMES)}"
)


def _classifier_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def train_teacher(x, y, num_classes, epochs, batch_size, learning_rate, verbose=0):
    """Trains the example CNN teacher on ``(x, y)`` and returns it."""
    teacher = make_teacher(x.shape[1:], num_classes)
    teacher.compile(keras.optimizers.Adam(learning_rate), _classifier_loss(), metrics=["accuracy"])
    teacher.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=verbose)
    return teacher


def run(
    dataset="digits",
    epochs=40,
    teacher_epochs=20,
    batch_size=64,
    learning_rate=3e-3,
    temperature=4.0,
    alpha=0.1,
    seed=0,
    output_dir="keras_kd_runs/distill",
    verbose=0,
):
    """Runs teacher, scratch student and distilled student; returns the results dict (see module doc)."""
    (x_train, y_train), (x_test, y_test) = kd.data.load(dataset)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    keras.utils.set_random_seed(seed)
    logging.info("Training the teacher on %s (%d examples)", dataset, len(x_train))
    teacher = train_teacher(x_train, y_train, num_classes, teacher_epochs, batch_size, learning_rate, verbose)
    teacher_acc = teacher.evaluate(x_test, y_test, verbose=0)[1]

    keras.utils.set_random_seed(seed + 1)
    scratch = make_student(x_train.shape[1:], num_classes)
    initial_weights = scratch.get_weights()
    distilled = keras.models.clone_model(scratch)
    distilled.set_weights(initial_weights)

    logging.info("Training the student from scratch")
    keras.utils.set_random_seed(seed + 2)
    scratch.compile(keras.optimizers.Adam(learning_rate), _classifier_loss(), metrics=["accuracy"])
    scratch.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    scratch_acc = scratch.evaluate(x_test, y_test, verbose=0)[1]

    logging.info("Distilling the student (T=%s, alpha=%s)", temperature, alpha)
    keras.utils.set_random_seed(seed + 2)
    distiller = kd.Distiller(
        student=distilled, teacher=teacher, losses=[kd.losses.LogitsKD(temperature)], alpha=alpha
    )
    distiller.compile(keras.optimizers.Adam(learning_rate), _classifier_loss(), metrics=["accuracy"])
    distiller.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    distilled_acc = distiller.evaluate(x_test, y_test, verbose=0)[1]

    os.makedirs(output_dir, exist_ok=True)
    student_path = distiller.save_student(os.path.join(output_dir, "student.keras"))
    teacher.save(os.path.join(output_dir, "teacher.keras"))
    return {
        "teacher_acc": float(teacher_acc),
        "scratch_acc": float(scratch_acc),
        "distilled_acc": float(distilled_acc),
        "teacher_params": int(teacher.count_params()),
        "student_params": int(distilled.count_params()),
        "student_path": os.path.abspath(student_path),
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    result = run(
        dataset=_DATASET.value,
        epochs=_EPOCHS.value,
        teacher_epochs=_TEACHER_EPOCHS.value,
        batch_size=_BATCH_SIZE.value,
        learning_rate=_LEARNING_RATE.value,
        temperature=_TEMPERATURE.value,
        alpha=_ALPHA.value,
        seed=_SEED.value,
        output_dir=_OUTPUT_DIR.value,
        verbose=int(_VERBOSE.value),
    )
    print(f"teacher   accuracy {result['teacher_acc']:.4f}  ({result['teacher_params']:,} parameters)")
    print(f"scratch   accuracy {result['scratch_acc']:.4f}  ({result['student_params']:,} parameters)")
    print(f"distilled accuracy {result['distilled_acc']:.4f}  saved to {result['student_path']}")
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
