"""Keras model -> .tflite file for a deployment target, converted in a child process and checked."""

import os
import tempfile

import numpy as np

from keras_kd._compat import keras, tf
from keras_kd.export import _flatbuffer
from keras_kd.export._convert_worker import ConverterProcess
from keras_kd.export._micro_ops import TFLM_BUILTIN_OPS

TARGETS = ("float", "phone", "int8", "watch")
WATCH_SIZE_BUDGET_BYTES = 256 * 1024
MAX_REPRESENTATIVE_EXAMPLES = 300
_MESSAGE_CHARS = 3000
_CONVERTER = ConverterProcess()


class ExportError(ValueError):
    """A conversion failed, or its result does not fit the target (ops, size).

    A subclass of ``ValueError``, so ``except ValueError`` also catches it. The message names the
    cause: the converter's own message, the operators the target cannot run, or the file size and
    the budget.

    Paper: David et al. (2021), "TensorFlow Lite Micro: Embedded Machine Learning for TinyML
    Systems" (the op set and memory limits the ``"watch"`` checks stand for).

    Example:
        >>> try:
        ...     to_tflite(student, "student.tflite", target="watch", representative_data=x_train)
        ... except ExportError as error:
        ...     print(error)
    """


def to_tflite(model, path, target="float", representative_data=None, size_budget_bytes=None):
    """Converts a Keras model to a .tflite file for a deployment target.

    Targets:

    - ``"float"``: float32 throughout, no quantization; the reference for the others.
    - ``"phone"``: float16 weights, float32 activations and interface. Chosen over dynamic-range
      int8 because it halves the file with a negligible accuracy change and runs on the fast
      path of both phone back ends: XNNPACK (LiteRT's default CPU delegate) unpacks the float16
      weights once at load, and the GPU delegate computes in float16 natively. Dynamic-range
      ("hybrid") int8 kernels quantize activations on the fly, shift results more, and are not
      run by the GPU delegate.
    - ``"int8"``: full-integer quantization (Jacob et al. 2018) calibrated on
      ``representative_data``: int8 weights and activations, float32 input and output tensors (a
      drop-in for the float file); an op without an int8 kernel falls back to float.
    - ``"watch"``: integer only, for microcontrollers running TensorFlow Lite Micro (David et al.
      2021): int8 input and output tensors, only ``TFLITE_BUILTINS_INT8`` ops, every op in
      TFLite Micro's builtin op list, and a file size within ``size_budget_bytes``.

    A model trained with tfmot quantization-aware training (``quantize_model``) converts to int8
    kernels with its learned ranges, so for its ``"int8"`` file ``representative_data`` is
    optional (``"watch"`` still needs it for the int8 input and output tensors). Pruning
    wrappers must be stripped first (``tfmot.sparsity.keras.strip_pruning``).

    The model is saved as a SavedModel in a temporary directory and converted in a child Python
    process (the TensorFlow 2.21 converter leaks memory on every call), reused for 20 conversions
    and then replaced; between conversions it waits, holding its memory, until the program ends.
    It writes a temporary file in the directory of ``path`` that replaces
    ``path`` only once the conversion and the target's checks passed: on any failure an existing
    file at ``path`` is left as it was and no partial file remains.

    Paper: Jacob et al. (2018), "Quantization and Training of Neural Networks for Efficient
    Integer-Arithmetic-Only Inference"; David et al. (2021), "TensorFlow Lite Micro: Embedded
    Machine Learning for TinyML Systems".

    Args:
        model: A built ``keras.Model`` (from ``keras_kd import keras``) with one input and one
            output, e.g. ``distiller.student``.
        path: Where to write the .tflite file; its directory must exist.
        target: One of ``TARGETS``: ``"float"``, ``"phone"``, ``"int8"``, ``"watch"``.
        representative_data: Inputs for calibrating the int8 ranges, drawn from the training data:
            a numpy array ``(N, *input_shape)`` or a ``tf.data.Dataset`` of inputs or of
            ``(inputs, labels)``, batched or not. At most ``MAX_REPRESENTATIVE_EXAMPLES`` (300)
            examples are used: evenly spaced ones from an array, the first ones from a dataset
            (shuffle it first if it is ordered by class). Required for ``"watch"``, and for
            ``"int8"`` unless the model was quantization-aware trained; ignored by the float
            targets.
        size_budget_bytes: Largest allowed file size in bytes. Defaults to
            ``WATCH_SIZE_BUDGET_BYTES`` (256 KiB, the flash left for a model on a typical
            Cortex-M4 board with 1 MiB) for ``"watch"`` and to no limit for the other targets.

    Returns:
        ``path`` (as given), now holding the converted model.

    Raises:
        ValueError: For an unknown target, a bad path, a model with other than one input and one
            output, pruning wrappers left in, missing or mis-shaped representative data, or a
            budget that is not a positive integer; raised before any conversion starts.
        TypeError: If ``model`` is not a ``keras.Model``.
        ExportError: If the converter fails (with its message), the ``"watch"`` file uses
            operators TFLite Micro cannot run (naming them), or the file is over the budget
            (naming both sizes).

    Example:
        >>> import keras_kd as kd
        >>> (x_train, _), _ = kd.data.load("digits")
        >>> kd.export.to_tflite(student, "student.tflite", target="watch",
        ...                     representative_data=x_train)
        'student.tflite'
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {list(TARGETS)}, received: target={target!r}")
    _check_path(path)
    quantization_aware = _check_model(model)
    budget = _check_budget(size_budget_bytes, target)
    needs_data = target in ("int8", "watch")
    # A QAT model carries its ranges, except for the int8 input/output tensors of the watch target.
    if needs_data and representative_data is None and (target == "watch" or not quantization_aware):
        raise ValueError(
            f"target={target!r} needs representative_data (a few hundred training inputs) to "
            "calibrate the int8 ranges, received: representative_data=None"
        )
    representative = None
    if needs_data and representative_data is not None:
        representative = _representative_array(representative_data, model.input_shape)

    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(prefix="keras_kd_export_") as work:
        saved_model = os.path.join(work, "saved_model")
        tf.saved_model.save(model, saved_model)
        request = {"saved_model": saved_model, "target": target}
        if representative is not None:
            request["representative"] = os.path.join(work, "representative.npy")
            np.save(request["representative"], representative)
        fd, temp_path = tempfile.mkstemp(prefix=".keras_kd_", suffix=".tflite.tmp", dir=directory)
        os.close(fd)
        try:
            _convert(dict(request, output=temp_path), target)
            with open(temp_path, "rb") as f:
                content = f.read()
            _check_result(content, target, budget)
            os.replace(temp_path, path)
        finally:
            if os.path.exists(temp_path):
                os.remove(temp_path)
    return path


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"path must be a file path, received: path={path!r}")
    if os.path.isdir(path):
        raise ValueError(f"path must be a file path, not a directory, received: path={path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(
            f"the directory of path does not exist: {directory!r}, received: path={path!r}"
        )


def _check_model(model):
    """Validates the model; returns whether it holds tfmot quantization (QAT) layers."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model must be a keras.Model (from keras_kd import keras), received: model={model!r}"
        )
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"model {model.name!r} is not built with known inputs; give it an Input layer or call "
            "it once on data before exporting"
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"model must have one input and one output, received: model {model.name!r} with "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    modules = {type(layer).__name__: type(layer).__module__ for layer in model.submodules}
    if "PruneLowMagnitude" in modules:
        raise ValueError(
            f"model {model.name!r} still holds pruning wrappers (PruneLowMagnitude); remove them "
            "with tfmot.sparsity.keras.strip_pruning(model) before exporting"
        )
    return any(m.startswith("tensorflow_model_optimization") for m in modules.values())


def _check_budget(size_budget_bytes, target):
    if size_budget_bytes is None:
        return WATCH_SIZE_BUDGET_BYTES if target == "watch" else None
    if isinstance(size_budget_bytes, bool) or not isinstance(size_budget_bytes, (int, np.integer)):
        raise ValueError(
            "size_budget_bytes must be a positive integer, received: "
            f"size_budget_bytes={size_budget_bytes!r}"
        )
    if size_budget_bytes <= 0:
        raise ValueError(
            "size_budget_bytes must be a positive integer, received: "
            f"size_budget_bytes={size_budget_bytes!r}"
        )
    return int(size_budget_bytes)


def _representative_array(data, input_shape):
    """Up to MAX_REPRESENTATIVE_EXAMPLES float32 inputs of shape ``(N, *input_shape[1:])``."""
    example_shape = tuple(input_shape[1:])
    if isinstance(data, tf.data.Dataset):
        parts, count = [], 0
        for element in data.as_numpy_iterator():
            if isinstance(element, (tuple, list)):
                element = element[0]
            element = np.asarray(element)
            if element.ndim == len(example_shape):
                element = element[None]
            _check_example_shape(element.shape[1:], example_shape)
            parts.append(element[: MAX_REPRESENTATIVE_EXAMPLES - count])
            count += len(parts[-1])
            if count >= MAX_REPRESENTATIVE_EXAMPLES:
                break
        array = np.concatenate(parts) if parts else np.zeros((0, *example_shape))
    elif isinstance(data, np.ndarray) or tf.is_tensor(data):
        array = np.asarray(data)
        if array.ndim == len(example_shape):
            array = array[None]
        _check_example_shape(array.shape[1:], example_shape)
        if len(array) > MAX_REPRESENTATIVE_EXAMPLES:
            array = array[np.linspace(0, len(array) - 1, MAX_REPRESENTATIVE_EXAMPLES).astype(int)]
    else:
        raise ValueError(
            "representative_data must be a numpy array or a tf.data.Dataset of inputs, received: "
            f"representative_data of type {type(data).__name__}"
        )
    if len(array) == 0:
        raise ValueError(
            "representative_data must hold at least one example, received: an empty one"
        )
    return array.astype(np.float32)


def _check_example_shape(shape, expected):
    if len(shape) != len(expected) or any(
        e is not None and s != e for s, e in zip(shape, expected, strict=True)
    ):
        raise ValueError(
            f"representative_data examples must have the model's input shape {expected}, received: "
            f"examples of shape {tuple(shape)}"
        )


def _convert(request, target):
    error = _CONVERTER.convert(request)
    if error is not None:
        if len(error) > _MESSAGE_CHARS:
            error = error[:_MESSAGE_CHARS] + " [...]"
        raise ExportError(f"TFLite conversion for target={target!r} failed: {error}")


def _check_result(content, target, budget):
    if target == "watch":
        info = _flatbuffer.describe(content)
        unsupported = sorted(op for op in info["ops"] if op not in TFLM_BUILTIN_OPS)
        if unsupported:
            raise ExportError(
                f"target='watch': TFLite Micro cannot run the operator(s) {unsupported} in this "
                "model (see keras_kd/export/_micro_ops.py); replace the layers that produce them "
                "(for example gelu -> relu)"
            )
        dtypes = info["input_dtypes"] + info["output_dtypes"]
        if any(d != "int8" for d in dtypes):
            raise ExportError(
                "target='watch' needs int8 input and output tensors, the converter produced "
                f"{dtypes}"
            )
    if budget is not None and len(content) > budget:
        raise ExportError(
            f"the {target!r} file is {len(content):,} bytes, over the size budget of {budget:,} "
            "bytes (size_budget_bytes); use a smaller student, pruning or a larger budget"
        )
