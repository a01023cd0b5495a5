"""Runs one TFLite conversion in its own process (``keras_kd.export.to_tflite`` starts it).

``TFLiteConverter.convert()`` leaks memory on every call in TensorFlow 2.20/2.21, so each
conversion gets a fresh interpreter process that exits afterwards. Usage::

    python -m keras_kd.export._convert_worker --saved_model dir --output out.tflite --target int8 \
        [--representative rep.npy]

The parent exports the Keras model as a SavedModel (what ``TFLiteConverter.from_keras_model``
does internally too), so the worker needs no Keras deserialization: custom layers need not be
importable here, and tfmot quantization-aware models convert with their fake-quant ranges (they
do not round-trip through ``.keras`` files in tfmot 0.8: their ``QuantizeLayer`` variables fail to
load).

On failure the process exits with status 1 and writes ``ERROR_MARKER`` and the error message as
the last lines of stderr, for the parent to report.
"""

import argparse
import sys

ERROR_MARKER = "--- keras_kd export error ---"


def convert(saved_model_dir, target, representative=None):
    """Converts a SavedModel for ``target``; returns the flatbuffer bytes."""
    from keras_kd._compat import tf  # sets TF_USE_LEGACY_KERAS before TensorFlow loads

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if target == "phone":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif target in ("int8", "watch"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if representative is not None:

            def dataset():
                for i in range(len(representative)):
                    yield [representative[i : i + 1]]

            converter.representative_dataset = dataset
    if target == "watch":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved_model", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--target", required=True, choices=["float", "phone", "int8", "watch"])
    parser.add_argument("--representative")
    args = parser.parse_args(argv)
    try:
        import numpy as np

        representative = None
        if args.representative:
            representative = np.load(args.representative).astype(np.float32)
        content = convert(args.saved_model, args.target, representative)
        with open(args.output, "wb") as f:
            f.write(content)
    except Exception as error:  # noqa: BLE001  (every failure goes back to the parent as text)
        sys.stderr.write(f"\n{ERROR_MARKER}\n{type(error).__name__}: {error}\n")
        sys.stderr.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
