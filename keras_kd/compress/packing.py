"""Real storage of quantized weights: bit-packed kernels plus float32 scales, and their byte count."""

import math

import numpy as np
import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)
from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import (  # noqa: E402
    QuantizeLayer,  # tfmot 0.8 does not export it
)

from keras_kd._compat import keras
from keras_kd.compress import _common, low_bit

_LastValueQuantizer = tfmot.quantization.keras.quantizers.LastValueQuantizer
_FLOAT_BITS = 32


def pack_weights(model):
    """Packs the quantized kernels of ``model`` into bits; returns every weight it needs to run.

    Each kernel quantized by ``keras_kd.compress.quantize`` is stored as integer levels ``k`` per
    weight, bit-packed with ``numpy.packbits`` (big-endian bit order, each tensor padded to a whole
    byte), plus one float32 scale per output channel (per tensor for tfmot's Dense kernels); the
    kernel the model uses is ``k * scale``:

    - binary (``BinaryWeightQuantizer``): 1 bit per weight, the bit is 1 for ``+scale`` and 0 for
      ``-scale``;
    - ternary (``TernaryWeightQuantizer``): 2 bits per weight, code ``k + 1`` for ``k`` in -1, 0, 1;
    - n-bit (tfmot's symmetric narrow-range ``LastValueQuantizer`` and its subclasses, e.g. the
      8-bit weights of ``quantize(model)`` and the sparsity-preserving ones, 2 to 8 bits): n bits per
      weight, code ``k + 2**(n-1) - 1`` for ``|k| <= 2**(n-1) - 1``; the scale is the
      quantization step ``(max - min) / (2**n - 2)`` of the learned range.

    The levels come from the quantizer's output (the values the model computes with in
    inference), not from the float kernel. Every other weight of the original layers (biases,
    batch-norm statistics, kernels of layers left in float) is kept as float32. Quantization
    ranges of activations and tfmot's bookkeeping variables are not weights and are left out
    (the TFLite file stores the ranges as per-tensor metadata).

    Paper: Han, Mao & Dally (2016), "Deep Compression: Compressing Deep Neural Networks with
    Pruning, Trained Quantization and Huffman Coding" (storing quantized weights as indices);
    Rastegari et al. (2016), "XNOR-Net: ImageNet Classification Using Binary Convolutional
    Neural Networks" (binary weights with a per-channel scale).

    Args:
        model: A Keras model, quantized by ``keras_kd.compress.quantize`` or plain (then every
            weight stays float32).

    Returns:
        ``{layer name: {weight name: entry}}`` in layer order, where a packed kernel's entry is a
        dict with ``"bits"``, ``"shape"``, ``"data"`` (uint8 array) and ``"scales"`` (float32
        array of the channel axes' shape, or a scalar array), and any other weight's entry is its
        float32 numpy array.

    Raises:
        TypeError: If ``model`` is not a Keras model.
        ValueError: If a kernel is quantized by a quantizer this function cannot pack (another
            kind, or values off its grid), naming the layer and the quantizer.

    Example:
        >>> packed = pack_weights(binary_student)
        >>> packed["s_block2"]["kernel"]["bits"]
        1
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"pack_weights needs a keras.Model, received: model={model!r}")
    packed = {}
    for layer in model.layers:
        if isinstance(layer, QuantizeLayer):
            continue  # holds only the input's quantization range
        entries, inner = {}, layer
        if isinstance(layer, _common.QuantizeWrapper):
            # The wrapper owns the quantized kernels; the inner layer still lists the rest.
            inner = layer.layer
            for weight, quantizer, variables in layer._weight_vars:
                entries[_short_name(weight)] = _pack_kernel(layer, weight, quantizer, variables)
        for weight in inner.weights:
            entries.setdefault(_short_name(weight), np.asarray(weight.numpy(), np.float32))
        if entries:
            packed[inner.name] = entries
    return packed


def packed_size(model):
    """The bytes ``pack_weights(model)`` takes, with a per-layer breakdown.

    ``bytes = kernel_bytes + scale_bytes + float_bytes`` where ``kernel_bytes`` sums
    ``ceil(params * bits / 8)`` over the packed kernels (1 bit per weight for binary, 2 for
    ternary, n for n-bit, 8 for 8-bit layers such as the first and last ones), ``scale_bytes`` is
    4 bytes per float32 scale, and ``float_bytes`` is 4 bytes per remaining weight (biases, float
    layers). Activation ranges and the model structure are not counted; the int8 TFLite file of
    the same model (``keras_kd.export.to_tflite(target="int8")``) is the deployable reference.

    Paper: Han, Mao & Dally (2016), "Deep Compression: Compressing Deep Neural Networks with
    Pruning, Trained Quantization and Huffman Coding".

    Args:
        model: A Keras model, quantized by ``keras_kd.compress.quantize`` or plain.

    Returns:
        A dict with ``bytes``, ``kernel_bytes``, ``scale_bytes``, ``float_bytes``,
        ``float32_bytes`` (every weight as float32, for comparison) and ``layers``:
        ``{layer name: {"weight_bits": bits of its kernel (32 when float), "params",
        "kernel_bytes", "scale_bytes", "float_bytes", "bytes"}}``.

    Raises:
        TypeError: If ``model`` is not a Keras model.
        ValueError: As ``pack_weights``.

    Example:
        >>> report = packed_size(compress.quantize(student, weight_bits="ternary"))
        >>> report["bytes"] < report["float32_bytes"] / 8
        True
    """
    layers = {}
    for name, entries in pack_weights(model).items():
        row = {"weight_bits": _FLOAT_BITS, "params": 0, "kernel_bytes": 0, "scale_bytes": 0}
        row["float_bytes"] = 0
        for entry in entries.values():
            if isinstance(entry, dict):
                row["weight_bits"] = entry["bits"]
                row["params"] += math.prod(entry["shape"])
                row["kernel_bytes"] += int(entry["data"].nbytes)
                row["scale_bytes"] += int(entry["scales"].nbytes)
            else:
                row["params"] += int(entry.size)
                row["float_bytes"] += int(entry.nbytes)
        row["bytes"] = row["kernel_bytes"] + row["scale_bytes"] + row["float_bytes"]
        layers[name] = row
    total = {key: sum(row[key] for row in layers.values()) for key in _TOTALS}
    return {
        "bytes": total["bytes"],
        "kernel_bytes": total["kernel_bytes"],
        "scale_bytes": total["scale_bytes"],
        "float_bytes": total["float_bytes"],
        "float32_bytes": 4 * total["params"],
        "layers": layers,
    }


_TOTALS = ("bytes", "kernel_bytes", "scale_bytes", "float_bytes", "params")


def _short_name(weight):
    return weight.name.split("/")[-1].split(":")[0]


def _levels(layer, weight, quantizer, variables):
    """(integer levels k, float32 scales, bits) with ``quantizer output == k * scales``."""
    values = np.asarray(quantizer(weight, False, variables).numpy(), np.float64)
    if isinstance(quantizer, (low_bit.BinaryWeightQuantizer, low_bit.TernaryWeightQuantizer)):
        axes = tuple(low_bit.channel_axes(len(values.shape), quantizer.depthwise))
        scales = np.max(np.abs(values), axis=axes).astype(np.float32)
        bits, largest = quantizer.bits, 1
    elif (
        isinstance(quantizer, _LastValueQuantizer)
        and quantizer.symmetric
        and quantizer.narrow_range
    ):
        bits = quantizer.num_bits
        largest = 2 ** (bits - 1) - 1
        low, high = variables["min_var"].numpy(), variables["max_var"].numpy()
        scales = np.asarray((high - low) / (2**bits - 2), np.float32)
    else:
        raise ValueError(
            f"pack_weights cannot pack the kernel of layer {layer.layer.name!r}: its quantizer "
            f"{type(quantizer).__name__} is not binary, ternary or tfmot's symmetric narrow-range "
            "LastValueQuantizer"
        )
    safe = np.where(scales > 0, scales, 1.0)
    levels = np.where(scales > 0, np.rint(values / safe), 0).astype(np.int64)
    tolerance = 1e-4 * np.max(np.abs(values)) + 1e-12
    if np.any(np.abs(levels) > largest) or np.max(np.abs(levels * scales - values)) > tolerance:
        raise ValueError(
            f"the quantized kernel of layer {layer.layer.name!r} is not on its {bits}-bit grid"
        )
    return levels, scales, bits


def _pack_kernel(layer, weight, quantizer, variables):
    levels, scales, bits = _levels(layer, weight, quantizer, variables)
    # Binary stores the sign; ternary and n-bit store k + 2**(bits-1) - 1 (ternary: k + 1).
    codes = (levels > 0) if bits == 1 else levels + 2 ** (bits - 1) - 1
    codes = np.asarray(codes, np.uint8).reshape(-1, 1)
    bit_rows = np.unpackbits(codes, axis=1)[:, 8 - bits :]
    return {
        "bits": bits,
        "shape": tuple(int(d) for d in weight.shape),
        "data": np.packbits(bit_rows.reshape(-1)),
        "scales": scales,
    }
