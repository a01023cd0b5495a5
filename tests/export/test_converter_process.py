"""The conversion child process: reused across conversions, replaced when it dies or is spent."""

import os
import signal
import sys

import pytest

from keras_kd import export
from keras_kd._compat import keras, tf
from keras_kd.export import _convert_worker, convert


def _tiny_model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3)(inputs))


def _child_pid():
    process = convert._CONVERTER._process
    return None if process is None else process.pid


def test_conversions_share_one_child_until_it_dies(tmp_path):
    convert._CONVERTER.close()  # earlier tests in this process may have nearly spent its child
    model = _tiny_model()
    export.to_tflite(model, str(tmp_path / "a.tflite"))
    first = _child_pid()
    export.to_tflite(model, str(tmp_path / "b.tflite"))
    assert first is not None and _child_pid() == first  # no new TensorFlow import per file

    os.kill(first, signal.SIGKILL)
    convert._CONVERTER._process.wait()
    export.to_tflite(model, str(tmp_path / "c.tflite"))  # a dead child is replaced, not reported
    assert _child_pid() not in (None, first)
    assert (tmp_path / "c.tflite").read_bytes() == (tmp_path / "a.tflite").read_bytes()


def test_a_spent_child_is_replaced_after_its_conversions(tmp_path):
    converter = _convert_worker.ConverterProcess(conversions_per_process=2)
    model_dir = str(tmp_path / "saved_model")
    keras_model = _tiny_model()
    tf.saved_model.save(keras_model, model_dir)
    pids = []
    for i in range(3):
        request = {"saved_model": model_dir, "target": "float", "output": str(tmp_path / f"{i}")}
        assert converter.convert(request) is None
        pids.append(converter._process.pid if converter._process else None)
    converter.close()
    assert pids[1] is None  # the second conversion spent the first child
    assert pids[0] is not None and pids[2] not in (None, pids[0])


def test_a_child_that_exits_mid_request_fails_that_request_with_its_status():
    silent = [sys.executable, "-c", "import sys; sys.stdin.readline(); sys.exit(7)"]
    converter = _convert_worker.ConverterProcess(command=silent)
    request = {"saved_model": "unused", "target": "float", "output": "unused"}
    assert converter.convert(request) == "the converter process exited with status 7"
    assert converter.convert(request) == "the converter process exited with status 7"


def test_the_converters_error_comes_back_as_its_type_and_message(tmp_path):
    converter = _convert_worker.ConverterProcess()
    request = {"saved_model": str(tmp_path / "missing"), "target": "float", "output": "x"}
    error = converter.convert(request)
    converter.close()
    assert error is not None and error.startswith("OSError: ")


@pytest.mark.parametrize("spent", [False, True])
def test_close_ends_the_child(spent):
    converter = _convert_worker.ConverterProcess()
    process = converter._running()
    if spent:
        converter.close()
    converter.close()  # twice is harmless
    assert process.wait(timeout=30) == 0
