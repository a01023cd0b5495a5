"""TFLite conversions in a separate process that ``keras_kd.export.to_tflite`` starts and reuses.

``TFLiteConverter.convert()`` leaks memory on every call in TensorFlow 2.20/2.21, so conversions
run in a child process, not in the caller's. Starting a Python process that imports TensorFlow
costs about 5 s of CPU, more than converting a small student, so the child serves
``CONVERSIONS_PER_PROCESS`` conversions and is then replaced, which bounds the leak. Usage (what
``ConverterProcess`` starts)::

    python -m keras_kd.export._convert_worker

It reads one JSON request per line on stdin (``saved_model``, ``target``, ``output`` and an
optional ``representative`` .npy path), writes the .tflite file to ``output``, and answers one JSON
line ``{"error": null}`` or ``{"error": "<Type>: <message>"}``; it exits at the end of stdin.

The parent exports the Keras model as a SavedModel (what ``TFLiteConverter.from_keras_model``
does internally too), so the child needs no Keras deserialization: custom layers need not be
importable here, and tfmot quantization-aware models convert with their fake-quant ranges (they
do not round-trip through ``.keras`` files in tfmot 0.8: their ``QuantizeLayer`` variables fail to
load).
"""

import atexit
import json
import os
import subprocess
import sys
import threading

CONVERSIONS_PER_PROCESS = 20


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


def _answer(request):
    """Runs one request; returns the error text, or ``None`` once the file is written."""
    try:
        import numpy as np

        representative = None
        if request.get("representative"):
            representative = np.load(request["representative"]).astype(np.float32)
        content = convert(request["saved_model"], request["target"], representative)
        with open(request["output"], "wb") as f:
            f.write(content)
    except Exception as error:  # noqa: BLE001  (every failure goes back to the parent as text)
        return f"{type(error).__name__}: {error}"
    return None


def serve():
    """The child's loop: answers requests from stdin until it closes."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints of TensorFlow must not mix with the replies
    for line in sys.stdin:
        if line.strip():
            replies.write(json.dumps({"error": _answer(json.loads(line))}) + "\n")
            replies.flush()


class ConverterProcess:
    """One reusable conversion process: started on first use, replaced every N conversions.

    Thread-safe; a process forked from the owner starts its own child. If the child dies (a
    crash in the converter), the request fails with its exit status and the next one starts a
    new child.

    Args:
        conversions_per_process: Conversions a child serves before it is replaced.
        command: The child's command line; defaults to this module (``serve``).

    Paper: none (process management around TensorFlow Lite's converter; David et al. 2021,
    "TensorFlow Lite Micro", for the targets it converts for).

    Example:
        >>> error = ConverterProcess().convert(
        ...     {"saved_model": "sm", "target": "float", "output": "m.tflite"})
    """

    def __init__(self, conversions_per_process=CONVERSIONS_PER_PROCESS, command=None):
        self._per_process = conversions_per_process
        self._command = command or [sys.executable, "-m", "keras_kd.export._convert_worker"]
        self._lock = threading.Lock()
        self._process, self._owner, self._served = None, None, 0
        atexit.register(self.close)

    def convert(self, request):
        """Sends ``request`` (a dict, see the module doc); returns the error text or ``None``.

        Args:
            request: ``saved_model``, ``target``, ``output`` and optionally ``representative``.

        Returns:
            ``None`` when ``output`` holds the converted file, else the converter's error text.

        Raises:
            Nothing of its own: a child that dies is reported in the returned text.
        """
        with self._lock:
            process = self._running()
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                status = process.wait()
                self._process = None
                return f"the converter process exited with status {status}"
            self._served += 1
            if self._served >= self._per_process:
                self._stop()
            return json.loads(line)["error"]

    def close(self):
        """Ends the child process, if one runs."""
        with self._lock:
            self._stop()

    def _running(self):
        if self._process is not None and self._owner != os.getpid():
            self._process = None  # a forked copy: the child belongs to the parent
        if self._process is None or self._process.poll() is not None:
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            self._process = subprocess.Popen(
                self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
            self._owner, self._served = os.getpid(), 0
        return self._process

    def _stop(self):
        process, self._process = self._process, None
        if process is None or self._owner != os.getpid():
            return
        try:
            process.stdin.close()
            process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()


if __name__ == "__main__":
    serve()
