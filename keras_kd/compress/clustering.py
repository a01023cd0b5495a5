"""Weight clustering (weight sharing) on tensorflow-model-optimization."""

import numpy as np
import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)

from keras_kd._checks import check_bool, check_choice, check_model, check_positive_int
from keras_kd.compress import _common

_Init = tfmot.clustering.keras.CentroidInitialization
CENTROID_INITS = {
    "kmeans_plus_plus": _Init.KMEANS_PLUS_PLUS,
    "linear": _Init.LINEAR,
    "random": _Init.RANDOM,
    "density_based": _Init.DENSITY_BASED,
}


def cluster(model, clusters, init="kmeans_plus_plus", layers=None, preserve_sparsity=False):
    """Returns a copy of ``model`` whose kernels share ``clusters`` values per layer as it trains.

    Wraps the layers in tfmot's ``cluster_weights``: each kernel's weights are grouped into
    ``clusters`` centroids; training updates the centroids, and every weight takes its centroid's
    value. After ``keras_kd.compress.strip`` each kernel holds at most ``clusters`` distinct values,
    which is what makes the gzipped model small (and what int8 export can keep, see
    ``keras_kd.compress.quantize(preserve="clusters")``). Biases are not clustered.

    Paper: Han, Mao & Dally (2016), "Deep Compression: Compressing Deep Neural Networks with
    Pruning, Trained Quantization and Huffman Coding" (trained weight sharing).

    Args:
        model: A built Sequential or functional Keras model. It is not changed.
        clusters: Number of centroids per kernel, >= 2.
        init: How the centroids start: one of ``CENTROID_INITS`` (``"kmeans_plus_plus"``,
            ``"linear"``, ``"random"``, ``"density_based"``).
        layers: Names of the layers to cluster; ``None`` clusters every layer tfmot supports.
        preserve_sparsity: Keep the zeros of a pruned model at zero (sparsity-preserving
            clustering).

    Returns:
        A new model with ``ClusterWeights`` wrappers around the clustered layers.

    Raises:
        ValueError: If an argument is out of range, ``layers`` names an unknown layer, or a layer
            cannot be clustered (named in the message, with the way around it).
        TypeError: If ``model`` is not a Keras model.

    Example:
        >>> clustered = cluster(student, 16)
        >>> # ... train (e.g. keras_kd.Distiller(student=clustered, ...).fit(...)), then:
        >>> small = keras_kd.compress.strip(clustered)
    """
    check_model("model", model, graph=True, caller="cluster")
    check_positive_int("clusters", clusters, minimum=2)
    check_choice("init", init, sorted(CENTROID_INITS))
    check_bool("preserve_sparsity", preserve_sparsity)
    names = _common.check_layer_names(model, layers, "cluster")
    _common.check_supported(
        model,
        names,
        "cluster",
        _common.ClusteringRegistry,
        tfmot.clustering.keras.ClusterableLayer,
        "tfmot.clustering.keras.ClusterableLayer",
        "get_clusterable_weights",
    )
    params = {
        "number_of_clusters": clusters,
        "cluster_centroids_init": CENTROID_INITS[init],
        "preserve_sparsity": preserve_sparsity,
    }

    def _wrap(layer):
        if (names is None or layer.name in names) and layer.weights:
            return tfmot.clustering.keras.cluster_weights(layer, **params)
        return layer

    return _common.clone_with(model, _wrap)


def distinct_values(model):
    """Counts the distinct values of each kernel of a (stripped) model.

    Args:
        model: A Keras model without clustering wrappers (e.g. after ``strip``).

    Returns:
        A dict ``{layer_name: number_of_distinct_kernel_values}`` for every layer with a kernel.

    Example:
        >>> max(distinct_values(keras_kd.compress.strip(clustered)).values()) <= 16
        True
    """
    counts = {}
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            kernel = getattr(layer, "depthwise_kernel", None)
        if kernel is not None:
            counts[layer.name] = int(np.unique(np.asarray(kernel.numpy())).size)
    return counts
