r"""Low-bit weights on one student: float, 8-bit QAT, n-bit, ternary, binary; labels vs distilled.

    nice -n 10 python -m examples.benchmark_lowbit --train_size=10000 --epochs=5

The teacher, the example CNN (``examples/models.make_teacher``), trains once on every training
example. The student is a small CNN with a dense head (conv 16 - pool - conv 32 - pool - dense
``--lowbit_hidden`` - logits; binary weights need the width of the dense layer). For every mode of
``--lowbit_modes`` it starts from the same initial weights, is wrapped by
``keras_kd.compress.quantize(weight_bits=...)`` (float: no wrapper; the first and last kernel
layers keep 8-bit weights unless ``--nolowbit_keep_first_last_8bit``) and trains ``--epochs``
epochs on ``--train_size`` examples twice: on the labels alone and distilled (the Distiller's
defaults; ``--temperature`` switches to Hinton KD at that temperature, ``--alpha`` sets the
hard-label weight). Reported per row: test accuracy of the Keras model (which
computes with the quantized weights), ``keras_kd.compress.packed_size`` (bit-packed kernels +
float32 scales + float32 biases) and, with ``--lowbit_tflite``, the size and test accuracy of the
int8 TFLite file (``keras_kd.export.to_tflite(target="int8")``; weights stored as int8 whatever
their bit width) and its top-1 agreement with the Keras model. Writes ``lowbit.json`` and ``lowbit.md`` to ``--output_dir``; the last line of
output is one JSON object.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json
import time

import numpy as np
from absl import flags, logging

import keras_kd as kd
from examples import common_flags
from examples.models import train_teacher
from keras_kd import compress, keras

MODES = ("float", "8", "4", "2", "ternary", "binary")

FLAGS = flags.FlagValues()
flags.DEFINE_list(
    "lowbit_modes",
    ["float", "8", "4", "ternary", "binary"],
    f"Weight modes from {list(MODES)}.",
    flag_values=FLAGS,
)
flags.register_validator(
    "lowbit_modes",
    lambda modes: bool(modes) and set(modes) <= set(MODES) and len(set(modes)) == len(modes),
    message=f"--lowbit_modes must be distinct names from {list(MODES)}",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "lowbit_hidden",
    128,
    "Units of the student's dense layer.",
    lower_bound=1,
    upper_bound=4096,
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "lowbit_keep_first_last_8bit",
    True,
    "Keep 8-bit weights in the first and last layers.",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "lowbit_tflite", True, "Also convert each student to int8 TFLite.", flag_values=FLAGS
)


def make_lowbit_student(input_shape, num_classes, hidden=128):
    """The benchmark's student: two conv blocks, a dense layer of ``hidden`` units, logits."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="lb_conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="lb_pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="lb_conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="lb_pool2")(x)
    x = keras.layers.Flatten(name="lb_flatten")(x)
    x = keras.layers.Dense(hidden, activation="relu", name="lb_dense")(x)
    outputs = keras.layers.Dense(num_classes, name="lb_logits")(x)
    return keras.Model(inputs, outputs, name="lowbit_student")


def _weight_bits(mode):
    return int(mode) if mode.isdigit() else mode


def _tflite(model, x_train, x_test, y_test, path):
    kd.export.to_tflite(model, path, target="int8", representative_data=x_train[:300])
    report = kd.export.verify(path, x_test, y_test, keras_model=model, runs=1, threads=(1,))
    return {key: report[key] for key in ("bytes", "accuracy", "agreement")}


@common_flags.with_settings(
    "seed teacher_width verbose",
    dataset="fashion_mnist",
    train_size=10000,
    epochs=5,
    teacher_epochs=5,
    batch_size=128,
    learning_rate=2e-3,
    temperature=None,
    alpha=None,
    output_dir="keras_kd_runs/lowbit",
)
def run(
    s,
    modes=("float", "8", "4", "ternary", "binary"),
    hidden=128,
    keep_first_last_8bit=True,
    tflite=True,
):
    """Trains every mode on labels and distilled; returns the table as a dict (see module doc).

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    ``verbose`` is Keras ``fit``'s (0 silent, 1 progress bars, 2 a line per epoch).
    """
    modes = list(modes)
    if not modes or not set(modes) <= set(MODES) or len(set(modes)) != len(modes):
        raise ValueError(
            f"modes must be distinct names from {list(MODES)}, received: modes={modes!r}"
        )
    (x, y), (x_test, y_test) = kd.data.load(s.dataset)
    os.makedirs(s.output_dir, exist_ok=True)
    order = np.random.default_rng(s.seed).permutation(len(x))[: s.train_size or len(x)]
    x_small, y_small = x[order], y[order]
    classes = int(max(y.max(), y_test.max())) + 1
    teacher = train_teacher(
        x,
        y,
        s.teacher_epochs,
        s.teacher_width,
        s.batch_size,
        1e-3,
        s.verbose,
        s.seed,
        num_classes=classes,
    )
    teacher_acc = float(teacher.evaluate(x_test, y_test, verbose=0)[1])
    logging.info("teacher: %.4f", teacher_acc)
    keras.utils.set_random_seed(s.seed + 1)
    initial = make_lowbit_student(x.shape[1:], classes, hidden)
    rows = []
    for mode in modes:
        for training in ("labels", "distilled"):
            start = time.perf_counter()
            student = keras.models.clone_model(initial)
            student.set_weights(initial.get_weights())
            if mode != "float":
                student = compress.quantize(
                    student,
                    weight_bits=_weight_bits(mode),
                    keep_first_last_8bit=keep_first_last_8bit,
                )
            model = student
            if training == "distilled":
                losses = None if s.temperature is None else [kd.losses.LogitsKD(s.temperature)]
                model = kd.Distiller(student, teacher, losses=losses, alpha=s.alpha)
            model.compile(
                keras.optimizers.Adam(s.learning_rate), kd.recipes.hard_loss(), metrics=["accuracy"]
            )
            keras.utils.set_random_seed(s.seed + 2)
            model.fit(x_small, y_small, epochs=s.epochs, batch_size=s.batch_size, verbose=s.verbose)
            student.compile(loss=kd.recipes.hard_loss(), metrics=["accuracy"])
            size = compress.packed_size(student)
            row = {
                "mode": mode,
                "training": training,
                "accuracy": float(student.evaluate(x_test, y_test, verbose=0)[1]),
                "packed_bytes": size["bytes"],
                "float32_bytes": size["float32_bytes"],
            }
            if tflite:
                path = os.path.join(s.output_dir, f"{mode}_{training}.tflite")
                report = _tflite(student, x_small, x_test, y_test, path)
                row.update({f"tflite_{key}": value for key, value in report.items()})
            row["seconds"] = time.perf_counter() - start
            logging.info("%s", row)
            rows.append(row)
    result = {
        "dataset": s.dataset,
        "train_size": len(x_small),
        "epochs": s.epochs,
        "teacher_epochs": s.teacher_epochs,
        "teacher_acc": teacher_acc,
        "hidden": hidden,
        "keep_first_last_8bit": keep_first_last_8bit,
        "temperature": s.temperature,
        "alpha": s.alpha,
        "seed": s.seed,
        "rows": rows,
    }
    return common_flags.write_result(s.output_dir, "lowbit", result, markdown(result))


def markdown(result):
    """Formats ``run``'s result: one line per mode, labels and distilled accuracy side by side."""
    tflite = any("tflite_bytes" in row for row in result["rows"])
    header = "| weights | labels acc | distilled acc | packed bytes | float32 / packed |"
    rule = "| --- | --- | --- | --- | --- |"
    if tflite:
        header += " int8 .tflite bytes | .tflite acc (labels / distilled) |"
        rule += " --- | --- |"
    lines = [header, rule]
    by_mode = {}
    for row in result["rows"]:
        by_mode.setdefault(row["mode"], {})[row["training"]] = row
    for mode, pair in by_mode.items():
        labels, distilled = pair["labels"], pair["distilled"]
        ratio = labels["float32_bytes"] / labels["packed_bytes"]
        line = (
            f"| {mode} | {labels['accuracy']:.4f} | {distilled['accuracy']:.4f} | "
            f"{labels['packed_bytes']:,} | {ratio:.1f}x |"
        )
        if tflite:
            line += (
                f" {labels['tflite_bytes']:,} | {labels['tflite_accuracy']:.4f} / "
                f"{distilled['tflite_accuracy']:.4f} |"
            )
        lines.append(line)
    return "\n".join(lines)


common_flags.define(FLAGS, run)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    names = dict(hidden="lowbit_hidden", keep_first_last_8bit="lowbit_keep_first_last_8bit")
    result = run(
        **common_flags.arguments(run, FLAGS, modes="lowbit_modes", tflite="lowbit_tflite", **names)
    )
    print(f"teacher {result['teacher_acc']:.4f}; {result['train_size']} training examples")
    print(markdown(result))
    print(json.dumps(result))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
