"""Tests of low-bit weights: binary/ternary quantizers, quantize(weight_bits=...), packing, export."""

import math

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot  # noqa: E402

import keras_kd as kd
from keras_kd import compress, keras
from keras_kd._compat import tf
from keras_kd.compress import _common

MODES = ["binary", "ternary", 2, 4]
# Largest number of distinct kernel values per output channel.
MAX_VALUES = {"binary": 2, "ternary": 3, 2: 4, 4: 16}


def _tiny():
    """Conv2D -> DepthwiseConv2D -> Dense: one layer of each kind the low-bit configs support."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu", name="depthwise")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


def _kernels(model):
    """{layer name: (float kernel variable, quantized kernel as the model uses it in inference)}."""
    result = {}
    for layer in model.layers:
        if isinstance(layer, _common.QuantizeWrapper):
            for weight, quantizer, variables in layer._weight_vars:
                result[layer.layer.name] = (weight, quantizer(weight, False, variables).numpy())
    return result


def _values_per_channel(kernel):
    """Distinct values of each output channel (last axis; last two for a depthwise kernel)."""
    channels = kernel.reshape(-1, *kernel.shape[-2:]) if kernel.ndim == 4 else kernel
    channels = channels.reshape(channels.shape[0], -1)
    return [np.unique(channels[:, c]).size for c in range(channels.shape[1])]


@pytest.mark.parametrize("weight_bits", MODES)
def test_trained_low_bit_kernels_take_few_values_per_channel(weight_bits, distill):
    qat = compress.quantize(_tiny(), weight_bits=weight_bits, keep_first_last_8bit=False)
    before = {name: w.numpy().copy() for name, (w, _) in _kernels(qat).items()}
    history = distill(qat).history.history  # a Distiller with the low-bit student trains
    assert np.isfinite(history["loss"]).all()
    kernels = _kernels(qat)
    assert sorted(kernels) == ["conv", "depthwise", "logits"]
    for name, (weight, quantized) in kernels.items():
        assert not np.array_equal(before[name], weight.numpy()), name
        counts = _values_per_channel(quantized)
        assert max(counts) <= MAX_VALUES[weight_bits], (name, counts)
        if weight_bits == "binary":
            # +-alpha_c, alpha_c = mean|w| of the channel (XNOR-Net); convolutions keep the values
            # of the last training step, before the optimizer's last update of w.
            axes = (0, 1) if name == "depthwise" else tuple(range(weight.shape.rank - 1))
            alpha = np.mean(np.abs(weight.numpy()), axis=axes)
            np.testing.assert_allclose(
                np.abs(quantized), np.broadcast_to(alpha, quantized.shape), rtol=0.05
            )
            assert min(counts) == 2
        if weight_bits == "ternary":
            assert np.mean(quantized == 0) > 0.1  # the 0.7 * mean|w| threshold zeroes weights


def _numpy_reference(kind, w):
    alpha_axes = tuple(range(w.ndim - 1))  # per output channel (last axis)
    if kind == "binary":
        alpha = np.mean(np.abs(w), axis=alpha_axes)
        return alpha * np.where(w >= 0, 1.0, -1.0), np.abs(w) <= 1.0
    delta = 0.7 * np.mean(np.abs(w), axis=alpha_axes)
    mask = np.abs(w) > delta
    alpha = np.sum(np.abs(w) * mask, axis=alpha_axes) / np.sum(mask, axis=alpha_axes)
    return alpha * np.sign(w) * mask, np.ones_like(w, bool)


@pytest.mark.parametrize(
    "kind, quantizer",
    [("binary", compress.BinaryWeightQuantizer()), ("ternary", compress.TernaryWeightQuantizer())],
)
def test_quantizer_matches_numpy_and_passes_the_gradient_straight_through(kind, quantizer):
    w = np.random.default_rng(0).normal(0.0, 0.8, (50, 4)).astype(np.float32)
    variable = tf.Variable(w)
    upstream = np.random.default_rng(1).normal(size=w.shape).astype(np.float32)
    with tf.GradientTape() as tape:
        quantized = quantizer(variable, True, {})
        loss = tf.reduce_sum(quantized * upstream)
    expected, passes = _numpy_reference(kind, w)
    np.testing.assert_allclose(quantized.numpy(), expected, rtol=1e-6)
    # STE: d quantized / d w = 1 (binary: only where |w| <= 1, the clipped estimator).
    np.testing.assert_allclose(tape.gradient(loss, variable).numpy(), upstream * passes)
    assert 0 < passes.mean() <= 1


@pytest.mark.parametrize("weight_bits", ["binary", "ternary"])
def test_gradient_reaches_every_float_kernel_of_the_model(weight_bits, small_digits):
    qat = compress.quantize(_tiny(), weight_bits=weight_bits, keep_first_last_8bit=False)
    x, y = small_digits
    with tf.GradientTape() as tape:
        logits = qat(x[:64], training=True)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y[:64], logits)
    kernels = [w for w, _ in _kernels(qat).values()]
    for kernel, grad in zip(kernels, tape.gradient(loss, kernels)):
        assert np.mean(grad.numpy() != 0) > 0.5, kernel.name


def _unpack(entry):
    """Independent decoding of one packed kernel: bits -> integer levels -> level * scale."""
    bits, shape = entry["bits"], entry["shape"]
    count = math.prod(shape)
    flat = np.unpackbits(entry["data"])[: count * bits].reshape(count, bits)
    codes = flat @ (1 << np.arange(bits - 1, -1, -1))
    levels = 2 * codes - 1 if bits == 1 else codes - (2 ** (bits - 1) - 1)
    return levels.reshape(shape) * entry["scales"]


@pytest.mark.parametrize("weight_bits", MODES + [8])
def test_packed_size_is_bits_times_params_plus_scales_and_first_last_stay_8bit(
    weight_bits, student, small_digits
):
    qat = compress.quantize(student, weight_bits=weight_bits)
    x, y = small_digits
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x[:64], y[:64], epochs=1, batch_size=32, verbose=0)
    bits = {"binary": 1, "ternary": 2}.get(weight_bits, weight_bits)
    # student: s_block1 Conv2D 3x3x1x8 (first, 8-bit), s_block2 Conv2D 3x3x8x16, s_logits Dense 16x10
    # (last, 8-bit: tfmot's n-bit Dense kernel has one scale per tensor). Bytes: kernel, scales, bias.
    expected = {
        "s_block1": 72 * 8 // 8 + 8 * 4 + 8 * 4,
        "s_block2": math.ceil(1152 * bits / 8) + 16 * 4 + 16 * 4,
        "s_logits": 160 * 8 // 8 + 1 * 4 + 10 * 4,
    }
    report = compress.packed_size(qat)
    assert {name: row["bytes"] for name, row in report["layers"].items()} == expected
    assert report["bytes"] == sum(expected.values())
    assert report["layers"]["s_block2"]["weight_bits"] == bits
    assert (
        report["layers"]["s_block1"]["weight_bits"] == report["layers"]["s_logits"]["weight_bits"]
    )
    assert report["float32_bytes"] == 4 * student.count_params()
    packed = compress.pack_weights(qat)
    for name, (_, quantized) in _kernels(qat).items():
        np.testing.assert_allclose(_unpack(packed[name]["kernel"]), quantized, atol=1e-6)


def test_packed_size_of_a_float_model_is_four_bytes_per_weight(student):
    report = compress.packed_size(student)
    assert report["bytes"] == report["float_bytes"] == 4 * student.count_params()


def test_low_bit_model_saves_loads_and_converts_to_int8_tflite(distill, small_digits, tmp_path):
    qat = compress.quantize(_tiny(), weight_bits="binary", keep_first_last_8bit=False)
    distill(qat)
    x, y = small_digits
    conv = _kernels(qat)["conv"][0]
    conv.assign(np.concatenate([np.abs(conv[..., :1]), conv[..., 1:]], axis=-1))  # one-sign channel
    with tfmot.quantization.keras.quantize_scope():
        qat.save(tmp_path / "binary.h5")
        loaded = keras.models.load_model(tmp_path / "binary.h5")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), qat.predict(x, verbose=0), atol=1e-5)
    assert compress.packed_size(loaded) == compress.packed_size(qat)

    path = kd.export.to_tflite(qat, str(tmp_path / "binary.tflite"), target="int8")
    report = kd.export.verify(path, x, y, keras_model=qat, runs=1, threads=(1,))
    assert report["agreement"] >= 0.95
    assert report["input_dtype"] == "float32" and "DEPTHWISE_CONV_2D" in report["ops"]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    kernels = {
        tuple(t["shape"]): interpreter.get_tensor(t["index"])
        for t in interpreter.get_tensor_details()
        if t["dtype"] == np.int8 and tuple(t["shape"]) in ((6, 3, 3, 1), (1, 3, 3, 12))
    }
    # Binary conv and depthwise kernels are stored as int8 -127 and 127 (one scale per channel).
    assert set(np.unique(kernels[(6, 3, 3, 1)])) <= {-127, 127}
    assert set(np.unique(kernels[(1, 3, 3, 12)])) <= {-127, 127}


class _MovingAverageKernelConfig(tfmot.quantization.keras.QuantizeConfig):
    """Quantizes a Dense kernel with a quantizer pack_weights does not know."""

    def get_weights_and_quantizers(self, layer):
        quantizer = tfmot.quantization.keras.quantizers.MovingAverageQuantizer(8, False, True, True)
        return [(layer.kernel, quantizer)]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def _with_moving_average_kernel():
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    dense = annotate(keras.layers.Dense(3, name="dense"), _MovingAverageKernelConfig())
    model = keras.Sequential([keras.Input((4,)), dense])
    with tfmot.quantization.keras.quantize_scope(
        {"_MovingAverageKernelConfig": _MovingAverageKernelConfig}
    ):
        return compress.quantize(model)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda m: compress.quantize(m, weight_bits=3.0), r"weight_bits=3\.0"),
        (lambda m: compress.quantize(m, weight_bits=9), "weight_bits=9"),
        (lambda m: compress.quantize(m, weight_bits=0), "weight_bits=0"),
        (lambda m: compress.quantize(m, weight_bits="int4"), "weight_bits='int4'"),
        (lambda m: compress.quantize(m, weight_bits=True), "weight_bits=True"),
        (lambda m: compress.quantize(m, weight_bits=1, preserve="sparsity"), "8-bit"),
        (lambda m: compress.quantize(m, keep_first_last_8bit="yes"), "keep_first_last_8bit"),
        (lambda m: compress.BinaryWeightQuantizer(clip_value=0), "clip_value=0"),
        (lambda m: compress.TernaryWeightQuantizer(threshold=0), "threshold=0"),
        (lambda m: compress.TernaryWeightQuantizer(threshold=1.5), "threshold=1.5"),
        (lambda m: compress.LowBitQuantizeConfig("quaternary"), "weights='quaternary'"),
        (lambda m: compress.LowBitQuantizeConfig(weight_attr="bias"), "weight_attr='bias'"),
        (lambda m: compress.packed_size(_with_moving_average_kernel()), "cannot pack .*'dense'"),
    ],
)
def test_low_bit_rejects_bad_arguments(student, make, message):
    with pytest.raises(ValueError, match=message):
        make(student)


@pytest.mark.parametrize(
    "obj",
    [
        compress.BinaryWeightQuantizer(clip_value=2.0),
        compress.TernaryWeightQuantizer(depthwise=True, threshold=0.5),
        compress.LowBitQuantizeConfig("ternary", "depthwise_kernel"),
    ],
)
def test_low_bit_objects_round_trip_through_keras_serialization(obj):
    config = keras.utils.serialize_keras_object(obj)
    assert keras.utils.get_registered_name(type(obj)) == f"keras_kd>{type(obj).__name__}"
    restored = keras.utils.deserialize_keras_object(config)
    assert type(restored) is type(obj) and restored.get_config() == obj.get_config()
