"""verify: the report of a .tflite file run in the LiteRT interpreter."""

import gzip
import os

import numpy as np
import pytest

from keras_kd import export
from keras_kd.export import _flatbuffer


@pytest.fixture(scope="module")
def reports(exported, export_student, digits):
    _, (x_test, y_test) = digits
    return {
        target: export.verify(
            path, x_test, y_test, keras_model=export_student, runs=5, threads=(1, 2)
        )
        for target, path in exported.items()
    }


def test_report_has_every_field_with_sizes_of_the_file(reports, exported):
    for target, report in reports.items():
        assert set(report) == {
            "accuracy",
            "agreement",
            "max_abs_diff",
            "bytes",
            "gzip_bytes",
            "arena_bytes",
            "latency_ms",
            "ops",
            "input_dtype",
            "output_dtype",
        }
        with open(exported[target], "rb") as f:
            content = f.read()
        assert report["bytes"] == len(content)
        assert report["gzip_bytes"] == len(gzip.compress(content, compresslevel=9))
        assert set(report["latency_ms"]) == {1, 2}
        assert all(ms > 0 for ms in report["latency_ms"].values())


def test_accuracy_matches_keras_and_int8_outputs_are_dequantized(reports, export_student, digits):
    _, (x_test, y_test) = digits
    keras_accuracy = np.mean(export_student.predict(x_test, verbose=0).argmax(axis=1) == y_test)
    assert reports["float"]["accuracy"] == pytest.approx(keras_accuracy)
    assert reports["float"]["agreement"] == 1.0
    assert reports["float"]["max_abs_diff"] < 1e-4
    logit_range = float(np.ptp(export_student.predict(x_test, verbose=0)))
    for target in ("int8", "watch"):
        assert reports[target]["agreement"] >= 0.98
        assert abs(reports[target]["accuracy"] - keras_accuracy) <= 0.02
        # Dequantized: the error is a small fraction of the logit range, not int8 codes.
        assert reports[target]["max_abs_diff"] < 0.1 * logit_range
    assert reports["watch"]["input_dtype"] == reports["watch"]["output_dtype"] == "int8"
    assert reports["int8"]["input_dtype"] == "float32"


def test_without_keras_model_parity_fields_are_none(exported, digits):
    _, (x_test, y_test) = digits
    report = export.verify(exported["int8"], x_test[:20], y_test[:20], runs=1, threads=1)
    assert report["agreement"] is None and report["max_abs_diff"] is None
    assert set(report["latency_ms"]) == {1}


def test_arena_estimate_is_the_peak_of_live_activations(exported, export_student):
    # Float student, batch 1: conv1 -> pool1 -> conv2 -> global pool -> logits, float32 tensors.
    sizes = [4 * int(np.prod(layer.output_shape[1:])) for layer in export_student.layers]
    peak = max(a + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    with open(exported["float"], "rb") as f:
        assert _flatbuffer.describe(f.read())["arena_bytes"] == peak
    with open(exported["watch"], "rb") as f:
        assert _flatbuffer.describe(f.read())["arena_bytes"] == peak // 4  # int8 activations


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"path": "missing.tflite"}, "path must be an existing .tflite file"),
        ({"y": np.zeros(3)}, "equally long"),
        ({"runs": 0}, "runs must be an integer >= 1"),
        ({"threads": ()}, "threads must be positive integers"),
        ({"keras_model": "model"}, "keras_model must be a keras.Model"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message, exported, digits):
    _, (x_test, y_test) = digits
    arguments = {"path": exported["float"], "x": x_test[:5], "y": y_test[:5]}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        export.verify(**arguments)


def test_describe_refuses_non_tflite_bytes(tmp_path):
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        _flatbuffer.describe(b"not a model at all")
    assert not os.listdir(tmp_path)


_XNNPACK_LINE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
_OPEN_TWICE = """
import sys

import numpy as np

from keras_kd import export
from keras_kd._compat import keras, tf

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
with open(sys.argv[1], "wb") as f:
    f.write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
litert = export.interpreter(sys.argv[1], num_threads=1)
litert.set_tensor(litert.get_input_details()[0]["index"], np.ones((1, 4), np.float32))
litert.invoke()
print(litert.get_tensor(litert.get_output_details()[0]["index"]).shape)
"""


@pytest.mark.parametrize("level, shown", [("2", False), ("0", True)])
def test_interpreter_hides_litert_info_line_unless_the_log_level_is_0(tmp_path, level, shown):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _OPEN_TWICE, str(tmp_path / "tiny.tflite")],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": level},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "(1, 3)"
    assert (_XNNPACK_LINE in done.stderr) is shown, done.stderr[-3000:]


def test_hidden_info_keeps_every_other_stderr_line(capfd, monkeypatch):
    from keras_kd.export.verify import _litert_info_hidden

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    with _litert_info_hidden():
        os.write(2, f"{_XNNPACK_LINE}\nERROR: a real failure\nWARNING: a warning\n".encode())
    err = capfd.readouterr().err
    assert "ERROR: a real failure\nWARNING: a warning\n" in err and "INFO:" not in err
