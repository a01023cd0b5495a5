"""Measurements of examples/compress.py: accuracy, sizes (gzip .h5, TFLite) and Keras latency.

A library of the example (no ``main``): ``measure`` one model, ``add_tflite_sizes`` of several in
one subprocess, ``keras_latency_ms`` and ``keras_speedup``.
"""

import gzip
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

from keras_kd import compress, keras
from keras_kd._compat import tf

# Run in a subprocess: TFLiteConverter.convert() leaks memory in TF 2.21.
_CONVERT = r"""
import gzip, json, sys
import keras_kd
from keras_kd._compat import keras, tf
import tensorflow_model_optimization as tfmot
sizes = {}
for path in sys.argv[1:]:
    with tfmot.quantization.keras.quantize_scope():
        model = keras.models.load_model(path, compile=False)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if any(isinstance(m, tfmot.quantization.keras.QuantizeWrapper) for m in model.submodules):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flat = converter.convert()
    sizes[path] = [len(flat), len(gzip.compress(flat, 9))]
print(json.dumps(sizes))
"""


def keras_latency_ms(model, x, batch, repeats=30):
    """Median milliseconds of a compiled ``model(x[:batch], training=False)`` call.

    Args:
        model: A Keras model.
        x: Inputs; the first ``batch`` are used.
        batch: Batch size of the timed call.
        repeats: Timed calls after one untimed (tracing) call.

    Returns:
        The median of the timed calls, in milliseconds.

    Example:
        >>> keras_latency_ms(student, x_test, batch=1)
    """
    call = tf.function(lambda inputs: model(inputs, training=False))
    sample = tf.constant(x[:batch])
    call(sample)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(sample).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def keras_speedup(reference, model, x, batch=256, rounds=5):
    """How many times faster ``model`` is than ``reference`` at ``batch``, measured interleaved.

    Each model's time is the best of ``rounds`` interleaved measurements, so that load from other
    processes affects both alike.

    Args:
        reference: The model to compare with (e.g. the float student).
        model: The model measured (e.g. the compressed student).
        x: Inputs; the first ``batch`` are used.
        batch: Batch size of the timed calls.
        rounds: Interleaved measurements of each model.

    Returns:
        ``reference`` milliseconds over ``model`` milliseconds (> 1: ``model`` is faster).

    Example:
        >>> keras_speedup(float_student, pruned_student, x_test)
    """
    reference_ms, model_ms = [], []
    for _ in range(rounds):
        reference_ms.append(keras_latency_ms(reference, x, batch, repeats=10))
        model_ms.append(keras_latency_ms(model, x, batch, repeats=10))
    return min(reference_ms) / min(model_ms)


def measure(model, name, x_test, y_test, directory, float_params=None):
    """Measures one model and saves it as ``<directory>/<name>.h5``.

    Args:
        model: A Keras model with integer-label logits (it is compiled here).
        name: File stem and the ``name`` of the result.
        x_test: Test inputs.
        y_test: Test labels (class ids).
        directory: An existing directory for the saved model and weights.
        float_params: Parameters to report instead of ``model.count_params()`` (for wrapped models).

    Returns:
        ``{"name", "accuracy", "parameters", "sparsity", "gzip_h5_bytes", "latency_ms_batch1",
        "latency_ms_batch256", "path"}``; ``gzip_h5_bytes`` is gzip -9 of the weights as .h5.

    Example:
        >>> measure(student, "float", x_test, y_test, "keras_kd_runs/compress")["accuracy"]
    """
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    accuracy = model.evaluate(x_test, y_test, verbose=0, batch_size=512)[1]
    path = os.path.join(directory, f"{name}.h5")
    with warnings.catch_warnings():  # .h5 on purpose: tfmot's wrappers load back from it
        warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
        model.save(path)
    weights = os.path.join(directory, f"{name}.weights.h5")
    model.save_weights(weights)
    with open(weights, "rb") as f:
        gzip_h5 = len(gzip.compress(f.read(), 9))
    return {
        "name": name,
        "accuracy": float(accuracy),
        "parameters": int(float_params if float_params is not None else model.count_params()),
        "sparsity": round(compress.sparsity(model)["total"], 4),
        "gzip_h5_bytes": gzip_h5,
        "latency_ms_batch1": round(keras_latency_ms(model, x_test, 1), 3),
        "latency_ms_batch256": round(keras_latency_ms(model, x_test, 256), 3),
        "path": os.path.abspath(path),
    }


def add_tflite_sizes(results):
    """Converts the saved models to TFLite in one subprocess and adds their sizes to the results.

    Args:
        results: ``measure`` results; each gets ``tflite_bytes`` and ``gzip_tflite_bytes`` (int8
            for quantization-aware models, float32 otherwise).

    Returns:
        ``results``, updated in place.

    Raises:
        RuntimeError: If the conversion subprocess fails, with the end of its stderr.

    Example:
        >>> add_tflite_sizes([measure(student, "float", x_test, y_test, out)])
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", _CONVERT, *[r["path"] for r in results]],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"TFLite conversion failed:\n{done.stderr[-3000:]}")
    sizes = json.loads(done.stdout.strip().splitlines()[-1])
    for result in results:
        result["tflite_bytes"], result["gzip_tflite_bytes"] = sizes[result["path"]]
    return results
