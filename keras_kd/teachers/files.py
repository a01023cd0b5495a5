"""File teachers: a ``.tflite`` file run in LiteRT, and a SavedModel directory's signature."""

import hashlib
import os
import threading

import numpy as np

from keras_kd._compat import tf
from keras_kd.export.verify import _dequantize, _quantize
from keras_kd.teachers.foreign import ForeignTeacher, NumpyTeacher


class TFLiteTeacher(NumpyTeacher):
    """A ``.tflite`` file as a teacher, run in the LiteRT interpreter on whole batches.

    A file with a dynamic batch axis runs each batch in one invoke (the input is resized); a file
    with a fixed batch runs in chunks of that size. Integer (quantized) inputs and outputs are
    quantized and dequantized with the file's scales, so the teacher always sees and returns floats.

    Args:
        path: Path to the ``.tflite`` file, with one input and one output.
        num_threads: Interpreter threads; ``None`` lets LiteRT choose.

    Raises:
        ValueError: If the file does not exist or has several inputs or outputs.

    Example:
        >>> distiller = keras_kd.Distiller(student=student, teacher=TFLiteTeacher("teacher.tflite"))
    """

    kind = ".tflite file"

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"path must be an existing .tflite file, received: path={path!r}")
        self.path = path
        self._interpreter = Interpreter(model_path=path, num_threads=num_threads)
        self._interpreter.allocate_tensors()
        inputs, outputs = (
            self._interpreter.get_input_details(),
            self._interpreter.get_output_details(),
        )
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"a .tflite teacher must have one input and one output, received: path={path!r} "
                f"with {len(inputs)} inputs and {len(outputs)} outputs"
            )
        signature = inputs[0]["shape_signature"]
        self._fixed_batch = int(signature[0]) if len(signature) and signature[0] > 0 else None
        super().__init__(
            os.path.splitext(os.path.basename(path))[0], [None, *outputs[0]["shape"][1:]]
        )
        with open(path, "rb") as f:
            self._digest = hashlib.blake2b(f.read(), digest_size=16).digest()
        self._lock = threading.Lock()  # one interpreter, possibly several replicas calling it

    def predict(self, x):
        if self._fixed_batch is None:
            return self._invoke(x)
        size = self._fixed_batch
        parts = []
        for start in range(0, len(x), size):
            chunk = x[start : start + size]
            padded = np.concatenate([chunk, np.zeros((size - len(chunk), *x.shape[1:]), x.dtype)])
            parts.append(self._invoke(padded)[: len(chunk)])
        return np.concatenate(parts)

    def _invoke(self, x):
        with self._lock:
            interpreter = self._interpreter
            detail = interpreter.get_input_details()[0]
            if tuple(detail["shape"]) != x.shape:
                interpreter.resize_tensor_input(detail["index"], list(x.shape))
                interpreter.allocate_tensors()
                detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(detail["index"], _quantize(x, detail))
            interpreter.invoke()
            output = interpreter.get_output_details()[0]
            return _dequantize(interpreter.get_tensor(output["index"]), output)

    def fingerprint(self):
        return self._digest

    def get_config(self):
        return {"path": self.path}


class SavedModelTeacher(ForeignTeacher):
    """A SavedModel directory as a teacher, through one of its signatures (``serving_default``).

    Args:
        path: A SavedModel directory (from ``tf.saved_model.save``, Keras 3's ``model.export`` or
            tf_keras's ``model.save``), or an object loaded with ``tf.saved_model.load``.
        signature: The signature to call.
        output: The signature's output that holds the logits; needed only when it has several.

    Raises:
        ValueError: If the signature is missing, takes several inputs, or has several outputs
            and ``output`` is not one of them.

    Example:
        >>> distiller = keras_kd.Distiller(student=student, teacher=SavedModelTeacher("teacher/"))
    """

    kind = "SavedModel"

    def __init__(self, path, signature="serving_default", output=None):
        loaded = (
            tf.saved_model.load(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else path
        )
        signatures = dict(getattr(loaded, "signatures", {}) or {})
        if signature not in signatures:
            raise ValueError(
                f"signature must be one of the SavedModel's signatures {sorted(signatures)}, "
                f"received: signature={signature!r}"
            )
        self._loaded = loaded  # keeps the signature's variables alive
        self._function = signatures[signature]
        specs = self._function.structured_input_signature[1]
        if len(specs) != 1:
            raise ValueError(
                f"a SavedModel teacher's signature must take one input, received: "
                f"signature={signature!r} with inputs {sorted(specs)}"
            )
        ((self._input_name, self._input_spec),) = specs.items()
        outputs = self._function.structured_outputs
        if output is None and len(outputs) == 1:
            output = next(iter(outputs))
        if output not in outputs:
            raise ValueError(
                f"output must name the signature's logits, one of {sorted(outputs)}, received: "
                f"output={output!r}"
            )
        self.path, self.signature, self.output = path, signature, output
        on_disk = isinstance(path, (str, os.PathLike))
        name = os.path.basename(os.path.normpath(os.fspath(path))) if on_disk else "saved_model"
        super().__init__(name, outputs[output].shape)

    def call(self, inputs):
        x = tf.cast(inputs, self._input_spec.dtype)
        return self._function(**{self._input_name: x})[self.output]

    def fingerprint(self):
        return self._fingerprint_with(self._function.variables)

    def get_config(self):
        if not isinstance(self.path, (str, os.PathLike)):
            return super().get_config()
        return {"path": os.fspath(self.path), "signature": self.signature, "output": self.output}
