"""Multiply-accumulate counts of plain Keras models, the compute measure of dynamic students."""

import math

from keras_kd._compat import keras

_CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def count_macs(model):
    """Counts multiply-accumulates (MACs) of one example through a model's Conv and Dense layers.

    Convolutions count ``output positions * output channels * kernel size * input channels /
    groups`` (depthwise and separable convolutions by their depthwise and pointwise parts); Dense
    layers count ``input features * units`` per position they are applied at. Pooling, activations,
    batch normalization and additions are cheap next to these and are not counted, as in the MAC
    figures of BranchyNet and the slimmable-network papers. Nested models are counted through.

    Paper: Teerapittayanon, McDanel & Kung (2016), "BranchyNet: Fast Inference via Early Exiting
    from Deep Neural Networks" (cost per exit); Yu et al. (2018), "Slimmable Neural Networks"
    (cost per width).

    Args:
        model: A built ``keras.Model`` (Functional or Sequential) with known input shapes.

    Returns:
        The MAC count of one example, an int.

    Raises:
        ValueError: If ``model`` is not a built Keras model, or a counted layer's shape is unknown.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> count_macs(model)
        12
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"model must be a built keras.Model, received: model={model!r}")
    return sum(_layer_macs(layer) for layer in model.layers)


def _layer_macs(layer):
    if isinstance(layer, keras.Model):
        return count_macs(layer)
    if isinstance(layer, keras.layers.Dense):
        in_shape, out_shape = _shapes(layer)
        return _positions(out_shape) * int(in_shape[-1]) * layer.units
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        in_shape, out_shape = _shapes(layer)
        return _positions(out_shape) * int(out_shape[-1]) * math.prod(layer.kernel_size)
    if isinstance(layer, keras.layers.SeparableConv2D):
        in_shape, out_shape = _shapes(layer)
        depthwise_channels = int(in_shape[-1]) * layer.depth_multiplier
        depthwise = _positions(out_shape) * depthwise_channels * math.prod(layer.kernel_size)
        return depthwise + _positions(out_shape) * depthwise_channels * layer.filters
    if isinstance(layer, _CONV_TYPES):
        in_shape, out_shape = _shapes(layer)
        per_output = math.prod(layer.kernel_size) * int(in_shape[-1]) // layer.groups
        return _positions(out_shape) * int(out_shape[-1]) * per_output
    return 0


def _shapes(layer):
    in_shape, out_shape = layer.input_shape, layer.output_shape
    if any(d is None for d in (*in_shape[1:], *out_shape[1:])):
        raise ValueError(
            f"layer {layer.name!r} has an unknown shape (input {in_shape}, output {out_shape}); "
            "MACs need a model built with fixed input sizes"
        )
    return in_shape, out_shape


def _positions(out_shape):
    return math.prod(int(d) for d in out_shape[1:-1])
