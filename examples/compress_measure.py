"""Measurements of examples/compress.py and examples/benchmark_compress.py.

A library of the examples (no ``main``): ``measure`` one model (accuracy, sizes, Keras latency;
its TFLite sizes through ``keras_kd.export.to_tflite``), ``keras_latency_ms`` and
``keras_speedup``.
"""

import gzip
import os
import time

import numpy as np

import keras_kd as kd
from keras_kd import compress
from keras_kd._compat import tf


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


def measure(model, name, x_test, y_test, directory, tflite=True):
    """Measures one model and saves it as ``<directory>/<name>.h5`` (and ``.tflite``).

    Args:
        model: A Keras model with integer-label logits (it is compiled here).
        name: File stem and the ``name`` of the result.
        x_test: Test inputs.
        y_test: Test labels (class ids).
        directory: An existing directory for the saved model and weights.
        tflite: Also convert it (``keras_kd.export.to_tflite``: int8 for a quantization-aware
            model, float32 otherwise) and report ``tflite_bytes`` and ``gzip_tflite_bytes``.

    Returns:
        ``{"name", "accuracy", "parameters", "sparsity", "gzip_h5_bytes", "latency_ms_batch1",
        "latency_ms_batch256", "path"}`` and the TFLite sizes; ``parameters`` are the stored ones
        (``keras_kd.compress.float_params``), ``gzip_h5_bytes`` is gzip -9 of the weights as .h5.

    Example:
        >>> measure(student, "float", x_test, y_test, "keras_kd_runs/compress")["accuracy"]
    """
    model.compile(loss=kd.recipes.hard_loss(), metrics=["accuracy"])
    accuracy = model.evaluate(x_test, y_test, verbose=0, batch_size=512)[1]
    path = kd.resilience.save_model_atomically(model, os.path.join(directory, f"{name}.h5"))
    weights = os.path.join(directory, f"{name}.weights.h5")
    model.save_weights(weights)
    result = {
        "name": name,
        "accuracy": float(accuracy),
        "parameters": int(compress.float_params(model)),
        "sparsity": round(compress.sparsity(model)["total"], 4),
        "gzip_h5_bytes": _gzip_bytes(weights),
        "latency_ms_batch1": round(keras_latency_ms(model, x_test, 1), 3),
        "latency_ms_batch256": round(keras_latency_ms(model, x_test, 256), 3),
        "path": os.path.abspath(path),
    }
    if tflite:
        target = "int8" if compress.is_quantized(model) else "float"
        flat = kd.export.to_tflite(model, os.path.join(directory, f"{name}.tflite"), target=target)
        result["tflite_bytes"], result["gzip_tflite_bytes"] = (
            os.path.getsize(flat),
            _gzip_bytes(flat),
        )
    return result


def _gzip_bytes(path):
    with open(path, "rb") as f:
        return len(gzip.compress(f.read(), 9))
