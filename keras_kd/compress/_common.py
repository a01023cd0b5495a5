"""Shared checks and model surgery of keras_kd.compress (private)."""

import contextlib

import tensorflow_model_optimization as tfmot  # noqa: E402  (after _compat: tfmot needs tf_keras)
from tensorflow_model_optimization.python.core.clustering.keras.cluster_wrapper import (
    ClusterWeights,
)  # noqa: E402
from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import (  # noqa: E402
    ClusteringRegistry,
)
from tensorflow_model_optimization.python.core.quantization.keras.quantize_annotate import (  # noqa: E402
    QuantizeAnnotate,
)
from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry  # noqa: E402
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (
    PruneLowMagnitude,
)  # noqa: E402

from keras_kd._compat import keras

__all__ = [
    "ClusterWeights",
    "ClusteringRegistry",
    "PruneLowMagnitude",
    "PruneRegistry",
    "QuantizeAnnotate",
    "QuantizeWrapper",
    "SafeModeScope",
    "check_layer_names",
    "check_supported",
    "clone_with",
    "copy_model",
    "has_wrapper",
    "layer_kind",
    "layer_kinds",
    "scopes",
]

# tfmot 0.8 exports neither its registries nor its wrapper classes; these are its internal paths.
QuantizeWrapper = tfmot.quantization.keras.QuantizeWrapper
# tf_keras 2.21 does not export its safe-mode switch either.
SafeModeScope = keras.src.saving.serialization_lib.SafeModeScope


def check_layer_names(model, layers, fn, arg="layers"):
    """Returns ``layers`` as a set of names, each a layer of ``model``; None stays None."""
    if layers is None:
        return None
    if isinstance(layers, str):
        layers = [layers]
    names = set(layers)
    known = [layer.name for layer in model.layers]
    unknown = sorted(names - set(known))
    if unknown:
        raise ValueError(
            f"{fn}: {arg} names unknown layers {unknown}; {arg} must name layers of {model.name!r} "
            f"({known}), received: {arg}={sorted(names)}"
        )
    return names


def check_supported(model, names, verb, registry, base, base_name, method):
    """Returns the selected layers of ``model``, or raises naming each one tfmot cannot ``verb``.

    Args:
        model: The model whose layers are selected: every layer but inputs, or those in ``names``.
        names: A set of layer names, or None for every layer.
        verb: What tfmot would do ("prune", "cluster"), for the message.
        registry: The tfmot registry whose ``supports(layer)`` lists the built-in layers.
        base: The tfmot class a user's layer subclasses to be supported, and ``base_name`` its
            public path, with ``method`` the method it defines, for the message.
    """
    selected = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer) and (names is None or layer.name in names)
    ]
    unsupported = [
        layer for layer in selected if not isinstance(layer, base) and not registry.supports(layer)
    ]
    if unsupported:
        others = [layer.name for layer in selected if layer not in unsupported]
        raise ValueError(
            f"tfmot cannot {verb} layer(s) {layer_kinds(unsupported)}. "
            f"Leave them out with layers={others}, or make the layer class a "
            f"{base_name} (define {method})."
        )
    return selected


def copy_model(model):
    """A new model with the architecture and weight values of ``model``, sharing no layer."""
    with scopes():
        copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def clone_with(model, clone_function):
    """Clones ``model`` (sharing none of its layers), calling ``clone_function`` per layer.

    ``clone_function`` receives a fresh copy of each layer carrying the original weights and returns
    the layer to use (the copy itself, or a tfmot wrapper around it).
    """
    source = copy_model(model)

    def _clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        result = clone_function(layer)
        if result is layer:
            # A layer reused as is would belong to two graphs; its .output (which feature taps
            # read) would then point into `source`, not into the clone.
            return _fresh_copy(layer)
        return result

    with scopes():
        return keras.models.clone_model(source, clone_function=_clone)


def _fresh_copy(layer):
    fresh = layer.__class__.from_config(layer.get_config())
    if layer.weights:
        fresh.build(layer.input_shape)
        fresh.set_weights(layer.get_weights())
    return fresh


def layer_kind(layer):
    return f"{layer.name!r} ({layer.__class__.__name__})"


def layer_kinds(layers):
    return ", ".join(layer_kind(layer) for layer in layers)


def has_wrapper(model, wrapper_type):
    return any(isinstance(m, wrapper_type) for m in model.submodules)


@contextlib.contextmanager
def scopes():
    """Makes every tfmot wrapper class deserializable, as clone_model and tfmot go through configs.

    Safe mode is off inside: only the caller's in-memory model is rebuilt (its Lambda code is
    already loaded in this process), never a file, and tf_keras refuses Lambda layers otherwise.
    """
    objects = {
        **_members(tfmot.quantization.keras.quantize_scope),
        **_members(tfmot.sparsity.keras.prune_scope),
        **_members(tfmot.clustering.keras.cluster_scope),
    }
    with keras.utils.custom_object_scope(objects), SafeModeScope(False):
        yield


def _members(scope_fn):
    merged = {}
    for objects in scope_fn().custom_objects:
        merged.update(objects)
    return merged
