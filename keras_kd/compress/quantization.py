"""Quantization-aware training (QAT) on tensorflow-model-optimization, alone or preserving sparsity
or clusters (tfmot's collaborative optimization)."""

import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)

from keras_kd._compat import keras
from keras_kd.compress import _common, stripping

_PRESERVE = (None, "sparsity", "clusters")


def _scheme(preserve):
    combine = tfmot.experimental.combine
    if preserve == "sparsity":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    if preserve == "clusters":
        return combine.Default8BitClusterPreserveQuantizeScheme()
    return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()


def quantize(model, preserve=None, skip_layers=None):
    """Returns a copy of ``model`` prepared for 8-bit quantization-aware training.

    Inserts tfmot's fake-quantization (``quantize_annotate_layer`` + ``quantize_apply``, the same as
    ``quantize_model``): weights are quantized per channel to int8 and activations per tensor, in
    the forward pass, with straight-through gradients, so that training (e.g. distillation, whose
    soft targets recover part of what quantization costs) adapts the weights to int8. The TFLite
    converter then turns the trained model into an int8 model without a representative dataset.

    ``preserve="sparsity"`` keeps the zeros of a pruned model
    (``Default8BitPrunePreserveQuantizeScheme``) and ``preserve="clusters"`` keeps the shared
    values of a clustered model (``Default8BitClusterPreserveQuantizeScheme``); pruning or
    clustering wrappers are stripped first.
    For ``Conv2D`` layers tfmot then trains the centroids of each output channel separately, so a
    kernel keeps at most ``clusters`` values per output channel (Dense kernels: per kernel).

    The result keeps its quantization wrappers after ``keras_kd.compress.strip`` (the converter
    needs them); save it as ``.h5`` and load it inside
    ``tfmot.quantization.keras.quantize_scope()``.

    Paper: Jacob, Kligys, Chen, Zhu, Tang, Howard, Adam & Kalenichenko (2018), "Quantization and
    Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference".

    Args:
        model: A built Sequential or functional Keras model, plain, pruned or clustered. It is not
            changed. Layers you already annotated with
            ``tfmot.quantization.keras.quantize_annotate_layer`` (e.g. a custom layer with your own
            ``QuantizeConfig``) are kept as annotated.
        preserve: ``None``, ``"sparsity"`` (pruning-preserving QAT) or ``"clusters"``
            (cluster-preserving QAT).
        skip_layers: Names of layers to leave in float (not quantized), e.g. a layer tfmot cannot
            quantize. The converter adds quantize/dequantize around them.

    Returns:
        A new model with ``QuantizeWrapperV2`` layers, trainable with ``fit`` or
        ``keras_kd.Distiller.fit``.

    Raises:
        ValueError: If ``preserve`` is unknown, ``skip_layers`` names an unknown layer, the model is
            already quantized, or a layer cannot be quantized (named in the message, with the way
            around it).
        TypeError: If ``model`` is not a Keras model.

    Example:
        >>> qat = quantize(student)
        >>> distiller = keras_kd.Distiller(student=qat, teacher=teacher)
        >>> # ... compile and fit, then convert distiller.student with tf.lite.TFLiteConverter
    """
    _common.check_model(model, "quantize")
    if preserve not in _PRESERVE:
        raise ValueError(
            f"preserve must be one of {list(_PRESERVE)}, received: preserve={preserve!r}"
        )
    if stripping.is_quantized(model):
        raise ValueError(
            f"model {model.name!r} is already quantized (it has QuantizeWrapper layers)"
        )
    skipped = _common.check_layer_names(model, skip_layers, "quantize", arg="skip_layers") or set()
    plain = stripping.strip(model)
    scheme = _scheme(preserve)
    registry = scheme.get_quantize_registry()
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    annotated_type = _common.QuantizeAnnotate
    unsupported = [
        layer
        for layer in plain.layers
        if not isinstance(layer, (keras.layers.InputLayer, annotated_type))
        and layer.name not in skipped
        and not registry.supports(layer)
    ]
    if unsupported:
        raise ValueError(
            f"tfmot cannot quantize layer(s) {_common.layer_kinds(unsupported)}. Leave them in "
            f"float with skip_layers={[layer.name for layer in unsupported]}, or annotate them "
            "with tfmot.quantization.keras.quantize_annotate_layer(layer, quantize_config=...) "
            "(a QuantizeConfig for the layer) before calling quantize."
        )

    def _annotate(layer):
        if isinstance(layer, annotated_type) or layer.name in skipped:
            return layer
        return annotate(layer)

    annotated = _common.clone_with(plain, _annotate)
    with _common.scopes():
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)
