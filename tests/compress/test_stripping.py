"""Tests of keras_kd.compress.strip: plain models that save, load and convert to TFLite."""

import json

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot  # noqa: E402

from keras_kd import compress, keras
from keras_kd.compress import _common
from tests.forked_script_runs import run_script

# Runs in a child process: TFLiteConverter.convert() leaks memory in TF 2.21.
_CONVERT = r"""
import json, sys
import numpy as np
import keras_kd
from keras_kd._compat import keras, tf
import tensorflow_model_optimization as tfmot
from ai_edge_litert.interpreter import Interpreter

x = np.load(sys.argv[1])
report = {}
for name in sys.argv[2:]:
    with tfmot.quantization.keras.quantize_scope():
        model = keras.models.load_model(name)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if name.endswith("qat.h5"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flat = converter.convert()
    interpreter = Interpreter(model_content=flat)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for row in x:
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0])
    dtypes = sorted({str(t["dtype"].__name__) for t in interpreter.get_tensor_details()})
    error = float(np.abs(np.array(outputs) - model.predict(x, verbose=0)).max())
    report[name] = {"max_error": error, "dtypes": dtypes, "bytes": len(flat)}
print(json.dumps(report))
"""


def test_strip_removes_every_wrapper_and_shares_no_layer(student):
    for compressed in (
        compress.prune(student, 0.5, schedule="constant"),
        compress.cluster(student, 4),
    ):
        plain = compress.strip(compressed)
        assert not any(
            isinstance(m, (_common.PruneLowMagnitude, _common.ClusterWeights))
            for m in plain.submodules
        )
        assert [type(layer) for layer in plain.layers] == [type(layer) for layer in student.layers]
        assert not any(a is b for a in plain.layers for b in compressed.submodules)


def test_stripped_and_qat_models_save_load_and_convert_to_tflite(
    student, distill, small_digits, tmp_path
):
    x, _ = small_digits
    pruned = compress.prune(student, 0.5, schedule="constant", frequency=2)
    distill(pruned)
    plain = compress.strip(pruned)
    qat = compress.strip(compress.quantize(plain))
    assert compress.is_quantized(qat) and not compress.is_quantized(plain)
    plain.save(tmp_path / "pruned.keras")
    plain.save(tmp_path / "pruned.h5")
    with tfmot.quantization.keras.quantize_scope():
        qat.save(tmp_path / "qat.h5")
    for path in ("pruned.keras", "pruned.h5"):
        loaded = keras.models.load_model(tmp_path / path)
        np.testing.assert_allclose(
            loaded.predict(x[:8], verbose=0), plain.predict(x[:8], verbose=0), atol=1e-6
        )
        assert compress.sparsity(loaded)["total"] == pytest.approx(0.5, abs=0.02)
    np.save(tmp_path / "x.npy", x[:16])
    done = run_script(
        {"code": _CONVERT},
        [tmp_path / "x.npy", tmp_path / "pruned.keras", tmp_path / "qat.h5"],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report[str(tmp_path / "pruned.keras")]["max_error"] < 1e-4
    assert "int8" in report[str(tmp_path / "qat.h5")]["dtypes"]
    assert (
        report[str(tmp_path / "qat.h5")]["bytes"] < report[str(tmp_path / "pruned.keras")]["bytes"]
    )


def test_strip_rejects_a_non_model():
    with pytest.raises(TypeError, match="strip needs a keras.Model"):
        compress.strip("model.keras")  # noqa: B005 (keras_kd.compress.strip)
