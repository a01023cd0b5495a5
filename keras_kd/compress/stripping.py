"""What a compressed model needs after training: its wrappers removed for export."""

import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)

import keras_kd._compat  # noqa: F401  (sets up tf_keras before tfmot)
from keras_kd._checks import check_model
from keras_kd.compress import _common


def strip(model):
    """Returns a copy of ``model`` without pruning or clustering wrappers, ready to save and export.

    Pruning wrappers are replaced by their layers holding the pruned (zeroed) kernels
    (``strip_pruning``), clustering wrappers by their layers holding the clustered kernels
    (``strip_clustering``), and the training-only variables of cluster-preserving QAT are dropped
    (``strip_clustering_cqat``). Quantization-aware training wrappers (from
    ``keras_kd.compress.quantize``) are kept on purpose: the TFLite converter reads the ranges
    they learned to produce the int8 model. Such a model saves to ``.h5`` and loads inside
    ``tfmot.quantization.keras.quantize_scope()`` (tf_keras 2.21 cannot reload tfmot's
    ``QuantizeLayer`` from the ``.keras`` format); every other stripped model is a plain Keras model
    that saves and loads in any format.

    Paper: Han, Mao & Dally (2016), "Deep Compression: Compressing Deep Neural Networks with
    Pruning, Trained Quantization and Huffman Coding" (pruned and shared weights, stored plainly).

    Args:
        model: A Keras model, compressed or not. It is not changed.

    Returns:
        A new model with the same weights values and no pruning or clustering wrappers.

    Raises:
        TypeError: If ``model`` is not a Keras model.
        ValueError: If it is a subclassed model (tfmot strips Sequential and functional models).

    Example:
        >>> plain = strip(pruned)
        >>> plain.save("student.keras")
    """
    check_model("model", model, graph=True, caller="strip")
    with _common.scopes():
        stripped = tfmot.sparsity.keras.strip_pruning(model)
        if _common.has_wrapper(stripped, _common.ClusterWeights):
            stripped = tfmot.clustering.keras.strip_clustering(stripped)
        if _common.has_wrapper(stripped, _common.QuantizeWrapper):
            stripped = tfmot.experimental.combine.strip_clustering_cqat(stripped)
    return _common.copy_model(stripped)


def is_quantized(model):
    """True when ``model`` carries quantization-aware training wrappers (see ``strip``)."""
    return _common.has_wrapper(model, _common.QuantizeWrapper)
