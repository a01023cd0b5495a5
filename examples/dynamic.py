r"""Dynamic students: early exits (depth) and slimmable widths, with compute chosen per input.

    python -m examples.dynamic
    python -m examples.dynamic --dataset=fashion_mnist --train_size=10000 \
        --epochs=8 --teacher_epochs=4

One run: a CNN teacher; an early-exit student (a three-block CNN with exits after
``--exit_layers``) distilled from the teacher into its final exit and from its final exit into the
earlier ones (``keras_kd.students.ExitDistillation`` through ``keras_kd.Distiller``); a slimmable
CNN trained by the sandwich rule with inplace distillation at ``--widths``, its batch
normalization then calibrated per width on (up to 5000) training inputs. Reported on the test
set: each exit's and each width's accuracy, MACs and parameters, and for every threshold of
``--thresholds`` the accuracy and average MACs when each input stops at the first confident exit
(or width). The accuracy-compute PNG goes to ``--output_dir``; with ``--export_tflite`` the
all-exits file, one file per exit depth and one per width are converted and run in LiteRT. The
last line of output is one JSON object.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json

import numpy as np
from absl import flags, logging

import keras_kd as kd
from examples import common_flags
from examples.models import train_teacher
from keras_kd import keras
from keras_kd import students as st
from keras_kd.students.difficulty import DEFAULT_THRESHOLDS

FLAGS = flags.FlagValues()
flags.DEFINE_list(
    "exit_layers",
    ["d_block1", "d_block2"],
    "Layers of the early-exit student that get exits.",
    flag_values=FLAGS,
)
flags.DEFINE_list(
    "thresholds",
    [str(t) for t in DEFAULT_THRESHOLDS],
    "Confidence thresholds (>= 0) to sweep; 0: all leave at the first stage, > 1: at the last.",
    flag_values=FLAGS,
)
flags.DEFINE_list(
    "widths",
    ["0.25", "0.5", "0.75", "1.0"],
    "Widths of the slimmable student, in (0, 1], with 1.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "exit_teacher_weight",
    1.0,
    "Weight of the teacher's KD into the final exit (0: none).",
    0.0,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "self_distillation_weight",
    1.0,
    "Weight of the final exit's KD into earlier exits.",
    0.0,
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "export_tflite",
    True,
    "Convert the exits and widths to TFLite and check them in LiteRT.",
    flag_values=FLAGS,
)


def _floats(values):
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def valid_thresholds(values):
    """True when ``values`` is a non-empty list of numbers >= 0 (strings from the command line)."""
    numbers = _floats(values)
    return bool(numbers) and all(np.isfinite(t) and t >= 0 for t in numbers)


def valid_widths(values):
    """True when ``values`` is a non-empty list of numbers in (0, 1] that includes 1."""
    numbers = _floats(values)
    return bool(numbers) and all(0 < w <= 1 for w in numbers) and 1.0 in numbers


for _name, _check, _message in (
    ("thresholds", valid_thresholds, "--thresholds must be a comma list of numbers >= 0"),
    ("widths", valid_widths, "--widths must be a comma list of numbers in (0, 1] including 1"),
    ("exit_layers", bool, "--exit_layers must name at least one layer"),
):
    flags.register_validator(_name, _check, _message, flag_values=FLAGS)


def make_backbone(input_shape, num_classes, width=16):
    """The early-exit student: three 3x3 convolution blocks, global average pooling, logits.

    Blocks ``d_block1..3`` have ``width``, ``2 * width`` and ``4 * width`` filters, with max pooling
    after the first two while the maps are at least 4 wide.

    Args:
        input_shape: Shape of one image ``(H, W, C)``.
        num_classes: Number of output logits.
        width: Filters of the first block.

    Returns:
        An uncompiled functional ``keras.Model`` named ``dynamic_student``.

    Raises:
        ValueError: If ``input_shape`` is not ``(H, W, C)``.
    """
    if len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (H, W, C) images, received: input_shape={tuple(input_shape)!r}"
        )
    inputs = keras.Input(input_shape)
    x = inputs
    for block in range(3):
        x = keras.layers.Conv2D(
            width * 2**block, 3, padding="same", activation="relu", name=f"d_block{block + 1}"
        )(x)
        if block < 2 and min(x.shape[1:3]) >= 4:
            x = keras.layers.MaxPooling2D(2, name=f"d_pool{block + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="d_global_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="d_logits")(x)
    return keras.Model(inputs, outputs, name="dynamic_student")


@common_flags.with_settings(
    "dataset train_size epochs teacher_epochs batch_size learning_rate temperature seed"
    " teacher_width student_width verbose",
    output_dir="keras_kd_runs/dynamic",
)
def run(
    s,
    exit_layers=("d_block1", "d_block2"),
    thresholds=DEFAULT_THRESHOLDS,
    widths=(0.25, 0.5, 0.75, 1.0),
    exit_teacher_weight=1.0,
    self_distillation_weight=1.0,
    export_tflite=True,
):
    """Trains the teacher, the early-exit and the slimmable students; returns the JSON report.

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    Raises:
        ValueError: For an unknown exit layer, a bad width or threshold, or non-image data.
    """
    (x_train, y_train), (x_test, y_test) = kd.data.load(s.dataset)
    if s.train_size:
        x_train, y_train = x_train[: s.train_size], y_train[: s.train_size]
    num_classes = int(max(y_train.max(), y_test.max()) + 1)
    os.makedirs(s.output_dir, exist_ok=True)
    fit = {"epochs": s.epochs, "batch_size": s.batch_size, "verbose": s.verbose}

    keras.utils.set_random_seed(s.seed)
    backbone = make_backbone(x_train.shape[1:], num_classes, width=s.student_width)
    early = st.EarlyExit(
        backbone,
        exits=list(exit_layers),
        temperature=s.temperature,
        distillation_weight=self_distillation_weight,
    )
    teacher = train_teacher(
        x_train, y_train, s.teacher_epochs, s.teacher_width, s.batch_size, s.learning_rate,
        s.verbose, num_classes=num_classes,
    )  # fmt: skip
    teacher_acc = float(teacher.evaluate(x_test, y_test, verbose=0)[1])
    logging.info("teacher accuracy %.4f", teacher_acc)

    if exit_teacher_weight > 0:
        loss = st.ExitDistillation(s.temperature, self_distillation_weight, exit_teacher_weight)
        trainer = kd.Distiller(early, teacher, losses=[loss], alpha=0.0)
        trainer.compile(keras.optimizers.Adam(s.learning_rate))
    else:
        trainer = early
        trainer.compile(keras.optimizers.Adam(s.learning_rate))
    trainer.fit(x_train, y_train, **fit)

    keras.utils.set_random_seed(s.seed)
    slim = st.make_slimmable_cnn(
        x_train.shape[1:], num_classes, width=s.student_width, widths=widths
    )
    slim.compile(keras.optimizers.Adam(s.learning_rate))
    slim.fit(x_train, y_train, **fit)
    slim.calibrate_batch_norm(x_train[:5000], batch_size=max(s.batch_size, 256))

    exit_logits = early.exit_logits(x_test)
    exit_names = [f"exit {i} ({name})" for i, name in enumerate([*early.exits, "output"])]
    exits = st.stage_points(exit_logits, y_test, early.exit_macs(), exit_names)
    width_logits = slim.width_logits(x_test)
    width_models = [st.at_width(slim, w) for w in slim.widths]
    width_rows = st.stage_points(
        width_logits, y_test, slim.width_macs(), [f"width {w:g}" for w in slim.widths]
    )
    for row, model, width in zip(width_rows, width_models, slim.widths):
        row.update(width=width, params=int(model.count_params()))
    exit_sweep = st.cascade_curve(exit_logits, y_test, early.dynamic_macs(), thresholds)
    width_sweep = st.cascade_curve(width_logits, y_test, np.cumsum(slim.width_macs()), thresholds)
    for point in exit_sweep:
        logging.info(
            "exits threshold %g: accuracy %.4f, average MACs %.0f",
            point["threshold"],
            point["accuracy"],
            point["average_macs"],
        )
    plot = st.plot_accuracy_compute(
        {
            "early exits, by confidence": exit_sweep,
            "slimmable, by confidence": width_sweep,
            "each exit alone": exits,
            "each width alone": width_rows,
        },
        os.path.join(s.output_dir, "accuracy_compute.png"),
        title=f"Compute by difficulty ({s.dataset})",
    )
    report = {
        "dataset": s.dataset,
        "train_examples": int(len(x_train)),
        "test_examples": int(len(x_test)),
        "teacher_acc": teacher_acc,
        "exits": exits,
        "exit_thresholds": exit_sweep,
        "widths": width_rows,
        "width_thresholds": width_sweep,
        "plot": plot,
        "tflite": None,
    }
    if export_tflite:
        report["tflite"] = _export(early, width_models, slim.widths, x_test, y_test, s.output_dir)
    return report


def _export(early, width_models, widths, x_test, y_test, output_dir):
    """Converts the all-exits model, each exit depth and each width; checks each in LiteRT."""
    files = {}
    exits_model = early.exits_model()
    path = kd.export.to_tflite(exits_model, os.path.join(output_dir, "exits.tflite"))
    interpreter = kd.export.interpreter(path)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], [len(x_test), *x_test.shape[1:]])
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x_test.astype(np.float32))
    interpreter.invoke()
    stacked = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    reference = exits_model.predict(x_test, verbose=0)
    files["exits"] = {
        "path": path,
        "bytes": os.path.getsize(path),
        "max_abs_diff": float(np.max(np.abs(stacked - reference))),
        "exit_accuracy": (stacked.argmax(-1) == y_test[:, None]).mean(axis=0).tolist(),
    }
    parts = [(f"exit{i}", early.truncated(i)) for i in range(early.num_exits)]
    parts += [(f"width_{w:g}", m) for w, m in zip(widths, width_models)]
    for name, model in parts:
        path = kd.export.to_tflite(model, os.path.join(output_dir, f"{name}.tflite"))
        checked = kd.export.verify(path, x_test, y_test, keras_model=model, runs=5, threads=(1,))
        files[name] = {
            "path": path,
            "bytes": checked["bytes"],
            "accuracy": checked["accuracy"],
            "max_abs_diff": checked["max_abs_diff"],
        }
    return files


common_flags.define(FLAGS, run)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    settings = common_flags.arguments(run, FLAGS)
    settings.update(thresholds=_floats(FLAGS.thresholds), widths=_floats(FLAGS.widths))
    report = run(**settings)
    print(f"teacher accuracy {report['teacher_acc']:.4f} ({report['train_examples']} examples)")
    for row in report["exits"] + report["widths"]:
        print(
            f"{row['stage']:>22}: accuracy {row['accuracy']:.4f}, {row['average_macs']:,.0f} MACs"
        )
    print("confidence threshold | exits: accuracy, average MACs | widths: accuracy, average MACs")
    for e, w in zip(report["exit_thresholds"], report["width_thresholds"]):
        print(
            f"{e['threshold']:>20g} | {e['accuracy']:.4f}, {e['average_macs']:>12,.0f} | "
            f"{w['accuracy']:.4f}, {w['average_macs']:>12,.0f}"
        )
    print(f"plot: {report['plot']}")
    if report["tflite"]:
        worst = max(f["max_abs_diff"] for f in report["tflite"].values())
        print(
            f"tflite: {len(report['tflite'])} files run in LiteRT, max |Keras - TFLite| {worst:.2g}"
        )
    print(json.dumps(report))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
