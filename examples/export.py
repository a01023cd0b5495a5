r"""Exports a saved student to a .tflite file for a target and verifies the file.

    python -m examples.distill                       # writes keras_kd_runs/distill/student.keras
    python -m examples.export --model=keras_kd_runs/distill/student.keras --target=watch

Writes ``<output_dir>/student_<target>.tflite`` (for ``watch`` also ``model_data.cc`` and
``model_data.h`` for TensorFlow Lite Micro firmware), runs it in the LiteRT interpreter on the
dataset's test split, prints the report, and saves it as ``<output_dir>/report_<target>.json``.
The representative data for the int8 targets is drawn from the training split. The last line of
output is the report as one JSON object (``keras_kd.export.verify``'s fields plus ``target``,
``keras_accuracy``, ``tflite_path`` and, for ``watch``, ``c_source`` and ``c_header``).
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json

from absl import app, flags, logging

import keras_kd as kd
from examples import common_flags
from keras_kd import export, keras

FLAGS = flags.FlagValues()
flags.DEFINE_enum("target", "watch", list(export.TARGETS), "Deployment target.", flag_values=FLAGS)
flags.DEFINE_integer(
    "size_budget_bytes",
    0,
    "Largest allowed .tflite size in bytes; 0: the target's default.",
    lower_bound=0,
    flag_values=FLAGS,
)


@common_flags.with_settings(
    "dataset unsafe_deserialization runs", output_dir="keras_kd_runs/export"
)
def run(s, model, target="watch", size_budget_bytes=None):
    """Exports ``model`` (a path or keras.Model) for ``target``; returns the report (module doc).

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).
    """
    (x_train, _), (x_test, y_test) = kd.data.load(s.dataset)
    if not isinstance(model, keras.Model):
        model = kd.load_model(model, unsafe=s.unsafe_deserialization)
    os.makedirs(s.output_dir, exist_ok=True)
    path = os.path.join(s.output_dir, f"student_{target}.tflite")
    logging.info("Converting %s for target %s", model.name, target)
    export.to_tflite(
        model, path, target=target, representative_data=x_train, size_budget_bytes=size_budget_bytes
    )
    report = export.verify(path, x_test, y_test, keras_model=model, runs=s.runs)
    keras_predictions = model.predict(x_test, batch_size=256, verbose=0).argmax(axis=1)
    report = {
        "target": target,
        "keras_accuracy": float((keras_predictions == y_test).mean()),
        **report,
        "tflite_path": os.path.abspath(path),
    }
    if target == "watch":
        cc_path, h_path = export.to_c_array(path, s.output_dir)
        report["c_source"], report["c_header"] = os.path.abspath(cc_path), os.path.abspath(h_path)
    with open(os.path.join(s.output_dir, f"report_{target}.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    return report


common_flags.define(FLAGS, run, model=None)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    if FLAGS.model is None:  # here, not a required flag: importing the script parses its flags
        raise app.UsageError("--model is required: a saved Keras model, e.g. --model=student.keras")
    settings = common_flags.arguments(run, FLAGS)
    settings["size_budget_bytes"] = settings["size_budget_bytes"] or None
    try:
        report = run(**settings)
    except export.ExportError as error:
        sys.exit(f"export failed: {error}")
    latency = ", ".join(f"{t} thread(s) {ms:.3f} ms" for t, ms in report["latency_ms"].items())
    common_flags.print_result(
        report,
        f"target {report['target']}: {report['tflite_path']}",
        f"accuracy {report['accuracy']:.4f} (Keras {report['keras_accuracy']:.4f}), "
        f"agreement {report['agreement']:.4f}",
        f"size {report['bytes']:,} bytes ({report['gzip_bytes']:,} gzipped), "
        f"arena ~{report['arena_bytes']:,} bytes",
        f"latency per example: {latency}",
    )


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
