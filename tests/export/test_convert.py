"""to_tflite: every target converts, matches Keras, and refuses what the target cannot hold."""

import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from keras_kd import export
from keras_kd._compat import keras, tf
from keras_kd.export import _flatbuffer


def _run(path, x):
    """Float outputs of a .tflite file on x (int8 interfaces quantized / dequantized)."""
    interpreter = Interpreter(model_path=path)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], x.shape)
    interpreter.allocate_tensors()
    detail, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if detail["dtype"] == np.int8:
        scale, zero = detail["quantization"]
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y


def test_float_export_matches_keras_outputs(exported, export_student, digits):
    _, (x_test, _) = digits
    expected = export_student.predict(x_test, verbose=0)
    assert np.max(np.abs(_run(exported["float"], x_test) - expected)) < 1e-4


@pytest.mark.parametrize("target", ["phone", "int8", "watch"])
def test_compressed_exports_agree_with_keras_top1(exported, export_student, digits, target):
    _, (x_test, _) = digits
    expected = export_student.predict(x_test, verbose=0).argmax(axis=1)
    agreement = np.mean(_run(exported[target], x_test).argmax(axis=1) == expected)
    assert agreement >= 0.98


def test_files_shrink_with_quantization(exported):
    sizes = {target: os.path.getsize(path) for target, path in exported.items()}
    assert sizes["watch"] <= sizes["int8"] < sizes["phone"] < sizes["float"]


def _kernel_operand_types(path):
    ops = Interpreter(model_path=path)._get_ops_details()
    return {
        op["op_name"]: op["operand_types"]
        for op in ops
        if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")
    }


@pytest.mark.parametrize("target", ["int8", "watch"])
def test_integer_targets_have_int8_kernels(exported, target):
    kernels = _kernel_operand_types(exported[target])
    assert set(kernels) == {"CONV_2D", "FULLY_CONNECTED"}
    assert all(types[:2] == [np.int8, np.int8] for types in kernels.values())


def test_watch_file_has_int8_input_and_output_tensors(exported):
    interpreter = Interpreter(model_path=exported["watch"])
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    with open(exported["watch"], "rb") as f:
        assert set(_flatbuffer.describe(f.read())["ops"]) <= export.TFLM_BUILTIN_OPS


def test_quantization_aware_model_converts_to_int8_kernels(digits, tmp_path):
    import tensorflow_model_optimization as tfmot

    (x, y), _ = digits
    keras.utils.set_random_seed(0)
    base = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model = tfmot.quantization.keras.quantize_model(base)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    path = export.to_tflite(model, str(tmp_path / "qat.tflite"), target="int8")  # ranges from QAT
    kernels = _kernel_operand_types(path)
    assert set(kernels) == {"CONV_2D", "FULLY_CONNECTED"}
    assert all(types[:2] == [np.int8, np.int8] for types in kernels.values())


def _gelu_model(input_shape):
    inputs = keras.Input(input_shape)
    hidden = keras.layers.Dense(16, activation="gelu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(10)(hidden))


def _erfinv_model(input_shape):
    inputs = keras.Input(input_shape)
    hidden = keras.layers.Lambda(tf.math.erfinv)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(10)(hidden))


@pytest.mark.parametrize(
    "case, target, expected",
    [
        ("gelu", "watch", "GELU"),  # converts to int8, but TFLite Micro has no GELU kernel
        ("erfinv", "float", "Custom ops: Erfinv"),  # no TFLite builtin: the converter itself fails
        ("over_budget", "watch", "over the size budget of 1,000 bytes"),
    ],
)
def test_refused_export_names_the_cause_and_keeps_the_previous_file(
    case, target, expected, export_student, exported, digits, tmp_path
):
    (x, _), _ = digits
    path = tmp_path / "model.tflite"
    path.write_bytes(b"previous model")
    model, budget = export_student, None
    if case == "gelu":
        model = _gelu_model(x.shape[1:])
    elif case == "erfinv":
        model = _erfinv_model(x.shape[1:])
    else:
        budget = 1000
    with pytest.raises(export.ExportError, match=expected) as raised:
        export.to_tflite(
            model, str(path), target=target, representative_data=x[:50], size_budget_bytes=budget
        )
    if case == "over_budget":
        assert f"{os.path.getsize(exported['watch']):,} bytes" in str(raised.value)
    assert path.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_representative_data_from_batched_labelled_dataset_matches_array(digits):
    from keras_kd.export.convert import _representative_array

    (x, y), _ = digits
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    from_dataset = _representative_array(dataset, (None, *x.shape[1:]))
    assert from_dataset.shape == (export.MAX_REPRESENTATIVE_EXAMPLES, *x.shape[1:])
    np.testing.assert_array_equal(from_dataset, x[: export.MAX_REPRESENTATIVE_EXAMPLES])
    unbatched = _representative_array(
        tf.data.Dataset.from_tensor_slices(x[:10]), (None, *x.shape[1:])
    )
    np.testing.assert_array_equal(unbatched, x[:10])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"target": "gpu"},
            ValueError,
            r"target must be one of \['float', 'phone', 'int8', 'watch'\]",
        ),
        ({"path": "/no/such/dir/m.tflite"}, ValueError, "directory of path does not exist"),
        ({"model": "not a model"}, TypeError, "model must be a keras.Model"),
        ({"target": "int8", "representative_data": None}, ValueError, "needs representative_data"),
        ({"target": "watch", "representative_data": None}, ValueError, "needs representative_data"),
        ({"target": "int8", "representative_data": np.zeros((4, 5))}, ValueError, "input shape"),
        ({"target": "int8", "representative_data": [1, 2]}, ValueError, "numpy array or a tf.data"),
        ({"size_budget_bytes": 0}, ValueError, "size_budget_bytes must be a positive integer"),
    ],
)
def test_bad_arguments_are_refused_before_converting(
    kwargs, error, message, student, digits, tmp_path
):
    (x, _), _ = digits
    arguments = {
        "model": student,
        "path": str(tmp_path / "m.tflite"),
        "target": "float",
        "representative_data": x,
    }
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        export.to_tflite(**arguments)
    assert not os.listdir(tmp_path)


def test_pruning_wrappers_must_be_stripped_first(student, tmp_path):
    import tensorflow_model_optimization as tfmot

    pruned = tfmot.sparsity.keras.prune_low_magnitude(student)
    with pytest.raises(ValueError, match="strip_pruning"):
        export.to_tflite(pruned, str(tmp_path / "m.tflite"))


def test_every_micro_op_is_a_tflite_builtin():
    assert export.TFLM_BUILTIN_OPS <= _flatbuffer.builtin_op_names()
