"""Runs a .tflite file in the LiteRT interpreter and reports accuracy, parity, size and latency."""

import contextlib
import gzip
import os
import sys
import tempfile
import time

import numpy as np

from keras_kd._checks import check_positive_int
from keras_kd._compat import keras
from keras_kd.export import _flatbuffer

_BATCH = 256
_WARMUP_RUNS = 5


def verify(path, x, y, keras_model=None, runs=50, threads=(1, 2)):
    """Runs a .tflite file on ``(x, y)`` and reports how well, how small and how fast it is.

    The file runs in the LiteRT interpreter (``ai_edge_litert.interpreter``, with its default
    XNNPACK CPU delegate). Float inputs are quantized for an int8 input tensor, and int8 outputs
    dequantized, with the tensors' own scale and zero point (Jacob et al. 2018), so every target
    is fed the same float inputs and compared on float outputs. Accuracy runs in batches (the
    input tensor is resized); latency is per single example (batch 1).

    Paper: Jacob et al. (2018), "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference".

    Args:
        path: A .tflite file, e.g. from ``keras_kd.export.to_tflite``, with one input and one
            output of class scores ``(batch, classes)``.
        x: Float inputs ``(N, *input_shape)``, as given to the Keras model.
        y: Integer class ids ``(N,)``.
        keras_model: The Keras model the file came from; when given, ``agreement`` and
            ``max_abs_diff`` compare the file with it.
        runs: Timed single-example invocations per thread count (> 0).
        threads: Interpreter thread counts to time, e.g. ``(1, 2)``.

    Returns:
        A dict with:

        - ``accuracy``: top-1 accuracy of the file on ``(x, y)``.
        - ``agreement``: fraction of examples where the file's top-1 class equals the Keras
          model's (``None`` without ``keras_model``).
        - ``max_abs_diff``: largest absolute difference between the file's (dequantized) outputs
          and the Keras outputs (``None`` without ``keras_model``). For float files this is
          numerical noise; for int8 files it includes the quantization error of the outputs.
        - ``bytes`` and ``gzip_bytes``: the file size, raw and gzip-compressed (level 9).
        - ``arena_bytes``: activation memory estimate at batch 1: the peak total size of the
          non-constant tensors alive at once (weights excluded; see
          ``keras_kd.export._flatbuffer.arena_bytes``). TFLite Micro's arena needs some headroom
          on top of it. A float16 file counts its weights' float32 copies (outputs of its
          DEQUANTIZE ops), which the plain interpreter allocates with the activations.
        - ``latency_ms``: ``{threads: median milliseconds per single-example invoke}``.
        - ``ops``, ``input_dtype``, ``output_dtype``: the operators and the interface tensor types
          of the file.

    Raises:
        ValueError: If an argument is invalid (missing file, ``x`` and ``y`` of different
            lengths, ``runs`` < 1, an empty or non-positive ``threads``), naming it.

    Example:
        >>> report = verify("student.tflite", x_test, y_test, keras_model=student)
        >>> report["agreement"] >= 0.98
        True
    """
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise ValueError(f"path must be an existing .tflite file, received: path={path!r}")
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y).reshape(-1)
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(
            "x and y must be non-empty and equally long, received: "
            f"{len(x)} inputs and {len(y)} labels"
        )
    check_positive_int("runs", runs)
    threads = tuple(threads) if not isinstance(threads, int) else (threads,)
    if not threads or any(
        isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in threads
    ):
        raise ValueError(f"threads must be positive integers, received: threads={threads!r}")
    if keras_model is not None and not isinstance(keras_model, keras.Model):
        raise ValueError(
            f"keras_model must be a keras.Model or None, received: keras_model={keras_model!r}"
        )

    with open(path, "rb") as f:
        content = f.read()
    info = _flatbuffer.describe(content)
    outputs = _predict(path, x)
    predicted = outputs.reshape(len(x), -1).argmax(axis=1)
    report = {
        "accuracy": float(np.mean(predicted == y)),
        "agreement": None,
        "max_abs_diff": None,
        "bytes": len(content),
        "gzip_bytes": len(gzip.compress(content, compresslevel=9)),
        "arena_bytes": info["arena_bytes"],
        "latency_ms": {int(t): _latency_ms(path, x, int(t), int(runs)) for t in threads},
        "ops": info["ops"],
        "input_dtype": info["input_dtypes"][0],
        "output_dtype": info["output_dtypes"][0],
    }
    if keras_model is not None:
        reference = np.asarray(
            keras_model.predict(x, batch_size=_BATCH, verbose=0), dtype=np.float32
        )
        report["agreement"] = float(
            np.mean(predicted == reference.reshape(len(x), -1).argmax(axis=1))
        )
        report["max_abs_diff"] = float(np.max(np.abs(outputs - reference.reshape(outputs.shape))))
    return report


def interpreter(path, num_threads=None):
    """Opens a .tflite file in the LiteRT interpreter, tensors allocated, without its INFO line.

    LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` on the C-level
    stderr once per process, when its default XNNPACK delegate is first applied (on the first
    ``allocate_tensors``). While this function opens the file and allocates its tensors, LiteRT's
    ``INFO:`` lines are dropped when ``TF_CPP_MIN_LOG_LEVEL`` is 1 or more (keras_kd sets 2 unless
    it is set; the example scripts 3, or 0 with ``--verbose=2``); every other line, warnings and
    errors included, is written back to stderr.

    Args:
        path: A .tflite file.
        num_threads: Interpreter threads, or ``None`` for LiteRT's default.

    Returns:
        An ``ai_edge_litert.interpreter.Interpreter`` whose tensors are allocated. Resize its input
        and call ``allocate_tensors`` again for another batch size.

    Raises:
        ValueError: If LiteRT cannot read the file (its own message).

    Example:
        >>> litert = interpreter("student.tflite", num_threads=1)
        >>> litert.get_input_details()[0]["shape"]
    """
    from ai_edge_litert.interpreter import Interpreter

    with _litert_info_hidden():
        opened = Interpreter(model_path=os.fspath(path), num_threads=num_threads)
        opened.allocate_tensors()  # applies the XNNPACK delegate, which logs the INFO line
    return opened


def _log_level():
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")
    return int(level) if level.isdigit() else 0


@contextlib.contextmanager
def _litert_info_hidden():
    """Sends file descriptor 2 to a file; writes back every line but LiteRT's ``INFO:`` lines.

    Does nothing when ``TF_CPP_MIN_LOG_LEVEL`` is 0 (or unset) or stderr has no file descriptor.
    """
    if _log_level() < 1:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines = sink.read().decode("utf-8", "replace").splitlines(True)
            kept = "".join(line for line in lines if not line.startswith("INFO: "))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _quantize(x, detail):
    scale, zero_point = detail["quantization"]
    if detail["dtype"] == np.float32 or scale == 0:
        return x.astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def _dequantize(values, detail):
    scale, zero_point = detail["quantization"]
    if detail["dtype"] == np.float32 or scale == 0:
        return values.astype(np.float32)
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def _predict(path, x):
    """The file's float (dequantized) outputs on all of ``x``, in batches of up to _BATCH."""
    litert = interpreter(path)
    input_detail = litert.get_input_details()[0]
    results, size = [], None
    for start in range(0, len(x), _BATCH):
        batch = x[start : start + _BATCH]
        if len(batch) != size:
            size = len(batch)
            litert.resize_tensor_input(input_detail["index"], [size, *x.shape[1:]])
            litert.allocate_tensors()
        input_detail = litert.get_input_details()[0]
        output_detail = litert.get_output_details()[0]
        litert.set_tensor(input_detail["index"], _quantize(batch, input_detail))
        litert.invoke()
        results.append(_dequantize(litert.get_tensor(output_detail["index"]), output_detail))
    return np.concatenate(results)


def _latency_ms(path, x, num_threads, runs):
    """Median milliseconds of one single-example ``invoke`` (inputs set outside the timing)."""
    litert = interpreter(path, num_threads=num_threads)
    detail = litert.get_input_details()[0]
    litert.resize_tensor_input(detail["index"], [1, *x.shape[1:]])
    litert.allocate_tensors()
    detail = litert.get_input_details()[0]
    examples = _quantize(x[: min(len(x), runs)], detail)
    times = []
    for i in range(_WARMUP_RUNS + runs):
        litert.set_tensor(detail["index"], examples[i % len(examples)][None])
        start = time.perf_counter()
        litert.invoke()
        if i >= _WARMUP_RUNS:
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)
