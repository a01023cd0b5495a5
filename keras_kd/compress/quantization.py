"""Quantization-aware training (QAT) on tensorflow-model-optimization: 8-bit alone or preserving
sparsity or clusters (tfmot's collaborative optimization), and low-bit (binary, ternary, n-bit)
weights."""

import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)

from keras_kd._checks import check_bool, check_choice, check_model
from keras_kd._compat import keras
from keras_kd.compress import _common, low_bit, stripping

_PRESERVE = (None, "sparsity", "clusters")


def _scheme(preserve):
    combine = tfmot.experimental.combine
    if preserve == "sparsity":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    if preserve == "clusters":
        return combine.Default8BitClusterPreserveQuantizeScheme()
    return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()


def quantize(model, preserve=None, skip_layers=None, weight_bits=8, keep_first_last_8bit=True):
    """Returns a copy of ``model`` prepared for quantization-aware training, 8-bit or low-bit.

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

    ``weight_bits`` below 8 trains low-bit weights (activations stay 8-bit, so the model still
    converts to an int8 TFLite model whose int8 weights hold the low-bit values):

    - ``1`` or ``"binary"``: ``alpha_c * sign(w)``, one scale per output channel
      (``keras_kd.compress.BinaryWeightQuantizer``, BinaryConnect / XNOR-Net);
    - ``"ternary"``: ``{-alpha_c, 0, alpha_c}`` (``keras_kd.compress.TernaryWeightQuantizer``,
      Ternary Weight Networks);
    - ``2`` to ``7``: tfmot's experimental n-bit scheme (``DefaultNBitQuantizeScheme``):
      symmetric, ``2**n - 1`` levels, per output channel for convolutions and per tensor for
      Dense kernels.

    With ``keep_first_last_8bit`` (the default, common practice since the first and last layers
    are small and the most sensitive) the first and last Dense/Conv2D/DepthwiseConv2D layers keep
    8-bit weights. ``keras_kd.compress.packed_size`` reports the storage of the result.

    Paper: Jacob, Kligys, Chen, Zhu, Tang, Howard, Adam & Kalenichenko (2018), "Quantization and
    Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference"; for low-bit
    weights Courbariaux, Bengio & David (2015), "BinaryConnect: Training Deep Neural Networks with
    binary weights during propagations", and Li, Zhang & Liu (2016), "Ternary Weight Networks".

    Args:
        model: A built Sequential or functional Keras model, plain, pruned or clustered. It is not
            changed. Layers you already annotated with
            ``tfmot.quantization.keras.quantize_annotate_layer`` (e.g. a custom layer with your own
            ``QuantizeConfig``) are kept as annotated.
        preserve: ``None``, ``"sparsity"`` (pruning-preserving QAT) or ``"clusters"``
            (cluster-preserving QAT).
        skip_layers: Names of layers to leave in float (not quantized), e.g. a layer tfmot cannot
            quantize. The converter adds quantize/dequantize around them.
        weight_bits: ``8`` (default), an integer in 1..7 (``1`` is binary), ``"binary"`` or
            ``"ternary"``. ``preserve`` needs ``weight_bits=8``.
        keep_first_last_8bit: Keep 8-bit weights in the first and last kernel layers when
            ``weight_bits`` is below 8.

    Returns:
        A new model with ``QuantizeWrapperV2`` layers, trainable with ``fit`` or
        ``keras_kd.Distiller.fit``.

    Raises:
        ValueError: If ``preserve`` or ``weight_bits`` is unknown (naming the value), ``preserve``
            is combined with low-bit weights, ``skip_layers`` names an unknown layer, the model is
            already quantized, or a layer cannot be quantized (named in the message, with the way
            around it).
        TypeError: If ``model`` is not a Keras model.

    Example:
        >>> qat = quantize(student)
        >>> distiller = keras_kd.Distiller(student=qat, teacher=teacher)
        >>> # ... compile and fit, then convert distiller.student with tf.lite.TFLiteConverter
        >>> binary = quantize(student, weight_bits="binary")  # 8-bit first and last layers
    """
    check_model("model", model, graph=True, caller="quantize")
    check_choice("preserve", preserve, _PRESERVE)
    weight_bits = low_bit.check_weight_bits(weight_bits)
    check_bool("keep_first_last_8bit", keep_first_last_8bit)
    if preserve is not None and weight_bits != 8:
        raise ValueError(
            f"preserve={preserve!r} works only with 8-bit weights, received: "
            f"weight_bits={weight_bits!r}"
        )
    if stripping.is_quantized(model):
        raise ValueError(
            f"model {model.name!r} is already quantized (it has QuantizeWrapper layers)"
        )
    skipped = _common.check_layer_names(model, skip_layers, "quantize", arg="skip_layers") or set()
    plain = stripping.strip(model)
    configs = {}
    if weight_bits == 8:
        scheme = _scheme(preserve)
    else:
        scheme, configs = low_bit.scheme_and_configs(
            plain, weight_bits, keep_first_last_8bit, skipped
        )
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
        return annotate(layer, quantize_config=configs.get(layer.name))

    annotated = _common.clone_with(plain, _annotate)
    with _common.scopes():
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)
