"""Low-bit weights: binary and ternary tfmot quantizers with a straight-through estimator, their
QuantizeConfigs, and n-bit (2-8) weights through tfmot's experimental n-bit scheme."""

import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)
from tensorflow_model_optimization.python.core.quantization.keras.experimental.default_n_bit import (  # noqa: E402
    default_n_bit_quantize_registry as _n_bit_registry,  # its configs are not exported
)

from keras_kd._checks import check_bool, check_choice, check_fraction, check_positive
from keras_kd._compat import keras, tf

_Quantizer = tfmot.quantization.keras.quantizers.Quantizer
_QuantizeConfig = tfmot.quantization.keras.QuantizeConfig
_NBit = tfmot.quantization.keras.experimental.default_n_bit

WEIGHTS = ("binary", "ternary")
# The layers whose kernel gets low-bit weights, and the attribute holding it.
KERNEL_ATTRS = {
    keras.layers.Dense: "kernel",
    keras.layers.Conv2D: "kernel",
    keras.layers.DepthwiseConv2D: "depthwise_kernel",
}
_ACTIVATION_BITS = 8


def channel_axes(rank, depthwise):
    """Axes reduced to get one value per output channel (last axis; last two for depthwise)."""
    return list(range(rank - 2 if depthwise else rank - 1))


def _straight_through(kernel, quantize, clip_value=None):
    """``quantize(kernel)`` forward; backward, the gradient goes to ``kernel`` unchanged.

    With ``clip_value`` the gradient is zeroed where ``|kernel| > clip_value`` (clipped estimator).
    A custom gradient rather than ``x + stop_gradient(q - x)``, which is ``q`` only up to float
    rounding: the forward values are exactly the quantized ones.
    """

    @tf.custom_gradient
    def forward(x):
        def backward(dy):
            if clip_value is None:
                return dy
            return dy * tf.cast(tf.abs(x) <= clip_value, dy.dtype)

        return quantize(x), backward

    return forward(tf.identity(kernel))


def _build_state(tensor_shape, name, layer, depthwise):
    """A convolution kernel's last quantized values and int8 range per output channel (tfmot's
    pattern: the converter reads a FakeQuant of variables as an int8 constant)."""
    if len(tensor_shape) == 2:
        return {}
    channels = tensor_shape[-2] * tensor_shape[-1] if depthwise else tensor_shape[-1]
    return {
        "values": layer.add_weight(
            f"{name}_values", shape=tensor_shape, initializer="zeros", trainable=False
        ),
        "range": layer.add_weight(
            f"{name}_range", shape=(channels,), initializer="ones", trainable=False
        ),
    }


def _quantize(inputs, quantize, scale, weights, training, clip_value=None):
    """Training: ``quantize(inputs)`` with a straight-through gradient, stored for inference.

    Inference (and the TFLite converter): the stored values of the last training step, through a
    symmetric per-channel 8-bit FakeQuant of range +-alpha_c that leaves them as they are (levels
    -127, 0, 127). The converter cannot fold a FakeQuant of values computed from a large kernel,
    and without a FakeQuant it quantizes the folded kernel with each channel's own min and max, so
    that a channel of one sign gets a nonzero zero point, which int8 convolutions reject. Dense
    kernels (no state) are computed in both modes: the converter folds them and quantizes them
    symmetrically per tensor.
    """
    if not weights or training:
        values = _straight_through(inputs, quantize, clip_value)
        if weights:
            alpha = tf.reshape(tf.maximum(scale(tf.stop_gradient(inputs)), 1e-12), [-1])
            weights["values"].assign(tf.stop_gradient(values))
            weights["range"].assign(alpha)
        return values
    limit = tf.convert_to_tensor(weights["range"])
    stored = tf.convert_to_tensor(weights["values"])
    channels = stored
    if stored.shape[-1] != limit.shape[0]:  # depthwise: channels are the last two axes
        channels = tf.reshape(stored, [*stored.shape[:2], 1, limit.shape[0]])
    grid = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        channels, -limit, limit, num_bits=8, narrow_range=True
    )
    return tf.reshape(grid, stored.shape)


@keras.utils.register_keras_serializable(package="keras_kd")
class BinaryWeightQuantizer(_Quantizer):
    """Binarizes a kernel to ``alpha_c * sign(w)``, with one scale ``alpha_c = mean|w|`` per channel.

    The forward pass uses the binary kernel; the backward pass is the clipped straight-through
    estimator of BinaryConnect / Hubara et al.: the gradient reaches the float ("latent") kernel
    unchanged where ``|w| <= clip_value`` and is zero outside (a ``tf.custom_gradient``); the
    scale is treated as a constant in the backward pass. ``sign(0)`` is +1, so every channel takes
    two values, ``-alpha_c`` and ``+alpha_c``. For convolution kernels, inference uses the binary
    kernel of the last training step (kept in non-trainable variables with its int8 range, like
    tfmot's ranges), which the int8 TFLite conversion stores exactly, as levels -127 and 127 of a
    per-channel scale ``alpha_c / 127``; it gives a Dense kernel one scale per tensor, which
    rounds each ``alpha_c`` to within ``max(alpha) / 254``.

    Paper: Courbariaux, Bengio & David (2015), "BinaryConnect: Training Deep Neural Networks with
    binary weights during propagations"; Rastegari, Ordonez, Redmon & Farhadi (2016), "XNOR-Net:
    ImageNet Classification Using Binary Convolutional Neural Networks" (the per-channel scale);
    Hubara, Courbariaux, Soudry, El-Yaniv & Bengio (2016), "Binarized Neural Networks" (the
    clipped estimator).

    Args:
        depthwise: True for a ``DepthwiseConv2D`` kernel ``(h, w, in, multiplier)``, whose output
            channels are its last two axes.
        clip_value: The gradient passes where ``|w| <= clip_value`` (> 0).

    Raises:
        ValueError: If an argument is invalid.

    Example:
        >>> config = LowBitQuantizeConfig("binary")
        >>> layer = tfmot.quantization.keras.quantize_annotate_layer(
        ...     keras.layers.Dense(64), quantize_config=config)
    """

    bits = 1

    def __init__(self, depthwise=False, clip_value=1.0):
        self.depthwise = check_bool("depthwise", depthwise)
        self.clip_value = check_positive("clip_value", clip_value)

    def build(self, tensor_shape, name, layer):
        return _build_state(tensor_shape, name, layer, self.depthwise)

    def scale(self, kernel):
        """The per-channel scale ``alpha_c`` of ``kernel`` (shape of its channel axes)."""
        axes = channel_axes(len(kernel.shape), self.depthwise)
        return tf.reduce_mean(tf.abs(kernel), axis=axes)

    def __call__(self, inputs, training, weights, **kwargs):
        def binarize(kernel):
            return self.scale(kernel) * tf.where(kernel >= 0, 1.0, -1.0)

        return _quantize(inputs, binarize, self.scale, weights, training, self.clip_value)

    def get_config(self):
        return {"depthwise": self.depthwise, "clip_value": self.clip_value}


@keras.utils.register_keras_serializable(package="keras_kd")
class TernaryWeightQuantizer(_Quantizer):
    """Ternarizes a kernel to ``{-alpha_c, 0, +alpha_c}`` per output channel (Ternary Weight Networks).

    Per channel, weights with ``|w| > threshold * mean|w|`` keep their sign and take the scale
    ``alpha_c``, the mean of their magnitudes; the others become 0 (Li & Liu's approximate optimal
    threshold is ``0.7 * mean|w|``). The backward pass is the plain straight-through estimator:
    the gradient of the ternary kernel goes unchanged to the float kernel (a
    ``tf.custom_gradient``), the threshold and scale being constants in it. The three
    values are int8 levels (-127, 0, 127), so int8 TFLite conversion keeps them (as in
    ``BinaryWeightQuantizer``, convolutions infer with the kernel of the last training step, and
    Dense kernels round ``alpha_c`` to one scale per tensor).

    Paper: Li, Zhang & Liu (2016), "Ternary Weight Networks".

    Args:
        depthwise: True for a ``DepthwiseConv2D`` kernel ``(h, w, in, multiplier)``.
        threshold: Fraction of the channel's mean magnitude below which a weight becomes 0, a
            number in (0, 1].

    Raises:
        ValueError: If an argument is invalid.

    Example:
        >>> config = LowBitQuantizeConfig("ternary")
        >>> layer = tfmot.quantization.keras.quantize_annotate_layer(
        ...     keras.layers.Conv2D(32, 3), quantize_config=config)
    """

    bits = 2

    def __init__(self, depthwise=False, threshold=0.7):
        self.depthwise = check_bool("depthwise", depthwise)
        self.threshold = check_fraction("threshold", threshold, "[0, 1]")
        if self.threshold == 0:
            raise ValueError(
                f"threshold must be a number in (0, 1], received: threshold={threshold!r}"
            )

    def build(self, tensor_shape, name, layer):
        return _build_state(tensor_shape, name, layer, self.depthwise)

    def _mask_and_scale(self, kernel):
        axes = channel_axes(len(kernel.shape), self.depthwise)
        magnitude = tf.abs(kernel)
        delta = self.threshold * tf.reduce_mean(magnitude, axis=axes, keepdims=True)
        mask = tf.cast(magnitude > delta, kernel.dtype)
        count = tf.reduce_sum(mask, axis=axes)
        alpha = tf.reduce_sum(magnitude * mask, axis=axes) / tf.maximum(count, 1.0)
        return mask, alpha

    def scale(self, kernel):
        """The per-channel scale ``alpha_c`` of ``kernel`` (shape of its channel axes)."""
        return self._mask_and_scale(kernel)[1]

    def __call__(self, inputs, training, weights, **kwargs):
        def ternarize(kernel):
            mask, alpha = self._mask_and_scale(kernel)
            return alpha * tf.sign(kernel) * mask

        return _quantize(inputs, ternarize, self.scale, weights, training)

    def get_config(self):
        return {"depthwise": self.depthwise, "threshold": self.threshold}


_QUANTIZERS = {"binary": BinaryWeightQuantizer, "ternary": TernaryWeightQuantizer}


@keras.utils.register_keras_serializable(package="keras_kd")
class LowBitQuantizeConfig(_QuantizeConfig):
    """tfmot ``QuantizeConfig`` giving a Dense, Conv2D or DepthwiseConv2D layer binary or ternary
    weights and 8-bit activations.

    The kernel goes through ``BinaryWeightQuantizer`` or ``TernaryWeightQuantizer``; the layer's
    activation function output is quantized to 8 bits (tfmot's moving-average quantizer, as in
    its default scheme). 8-bit rather than float activations: the whole model then converts to
    an integer-only TFLite graph (low-bit weights stored as int8), which is what runs on
    microcontrollers, and 8-bit activations cost little accuracy. Binary activations (XNOR-Net)
    cost far more and no TFLite kernel would exploit them; BinaryConnect and TWN keep activations
    in full precision. The bias stays in float (int32 after conversion).

    Use it with ``tfmot.quantization.keras.quantize_annotate_layer`` and
    ``quantize_apply`` inside ``quantize_scope`` (the classes here are registered as
    ``keras_kd>...``, so no extra custom objects are needed), or let
    ``keras_kd.compress.quantize(model, weight_bits="binary")`` do it.

    Paper: Courbariaux, Bengio & David (2015), "BinaryConnect: Training Deep Neural Networks with
    binary weights during propagations"; Li, Zhang & Liu (2016), "Ternary Weight Networks".

    Args:
        weights: ``"binary"`` or ``"ternary"``.
        weight_attr: The kernel attribute: ``"kernel"`` (Dense, Conv2D) or ``"depthwise_kernel"``
            (DepthwiseConv2D).

    Raises:
        ValueError: If an argument is invalid.

    Example:
        >>> annotate = tfmot.quantization.keras.quantize_annotate_layer
        >>> model = keras.Sequential([keras.Input((784,)),
        ...     annotate(keras.layers.Dense(256, "relu"), LowBitQuantizeConfig("binary")),
        ...     keras.layers.Dense(10)])
        >>> with tfmot.quantization.keras.quantize_scope():
        ...     qat = tfmot.quantization.keras.quantize_apply(
        ...         tfmot.quantization.keras.quantize_annotate_model(model))
    """

    def __init__(self, weights="binary", weight_attr="kernel"):
        check_choice("weights", weights, WEIGHTS)
        if weight_attr not in ("kernel", "depthwise_kernel"):
            raise ValueError(
                "weight_attr must be 'kernel' or 'depthwise_kernel', received: "
                f"weight_attr={weight_attr!r}"
            )
        self.weights = weights
        self.weight_attr = weight_attr
        self.weight_quantizer = _QUANTIZERS[weights](depthwise=weight_attr == "depthwise_kernel")
        self.activation_quantizer = tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
            num_bits=_ACTIVATION_BITS, per_axis=False, symmetric=False, narrow_range=False
        )

    def get_weights_and_quantizers(self, layer):
        return [(getattr(layer, self.weight_attr), self.weight_quantizer)]

    def get_activations_and_quantizers(self, layer):
        return [(layer.activation, self.activation_quantizer)]

    def set_quantize_weights(self, layer, quantize_weights):
        setattr(layer, self.weight_attr, quantize_weights[0])

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {"weights": self.weights, "weight_attr": self.weight_attr}


def check_weight_bits(weight_bits):
    """Returns ``weight_bits`` as ``"binary"``, ``"ternary"`` or an int in 2..8, or raises."""
    if weight_bits in ("binary", "ternary"):
        return weight_bits
    if not isinstance(weight_bits, bool) and isinstance(weight_bits, int) and 1 <= weight_bits <= 8:
        return "binary" if weight_bits == 1 else weight_bits
    raise ValueError(
        "weight_bits must be an integer in 1..8 (1 = binary), 'binary' or 'ternary', received: "
        f"weight_bits={weight_bits!r}"
    )


def scheme_and_configs(plain, weight_bits, keep_first_last_8bit, skipped):
    """The tfmot scheme and the explicit QuantizeConfig of each kernel layer of ``plain``.

    Every quantized kernel layer gets an explicit config, so ``quantize_apply`` does not ask the
    scheme's registry for them: low-bit configs for the middle layers, tfmot's n-bit configs with
    8 bits for the first and last (when ``keep_first_last_8bit``). Activations are 8-bit.
    """
    n_bits = weight_bits if isinstance(weight_bits, int) else _ACTIVATION_BITS
    scheme = _NBit.DefaultNBitQuantizeScheme(
        num_bits_weight=n_bits, num_bits_activation=_ACTIVATION_BITS
    )
    kernels = [
        layer for layer in plain.layers if type(layer) in KERNEL_ATTRS and layer.name not in skipped
    ]
    edges = {kernels[0].name, kernels[-1].name} if kernels and keep_first_last_8bit else set()
    configs = {}
    for layer in kernels:
        attr = KERNEL_ATTRS[type(layer)]
        if layer.name in edges or isinstance(weight_bits, int):
            configs[layer.name] = _n_bit_config(layer, attr, 8 if layer.name in edges else n_bits)
        else:
            configs[layer.name] = LowBitQuantizeConfig(weight_bits, attr)
    return scheme, configs


def _n_bit_config(layer, attr, bits):
    """tfmot's n-bit config for a kernel layer (what its registry returns), built directly.

    tfmot 0.8's ``DefaultNBitQuantizeRegistry`` stores the bit width of Dense layers in
    class-level objects that every new registry overwrites, so registries of two bit widths
    cannot be used side by side.
    """
    config_class = (
        _n_bit_registry.DefaultNBitQuantizeConfig
        if isinstance(layer, keras.layers.Dense)
        else _n_bit_registry.DefaultNBitConvQuantizeConfig
    )
    return config_class(
        [attr], ["activation"], False, num_bits_weight=bits, num_bits_activation=_ACTIVATION_BITS
    )
