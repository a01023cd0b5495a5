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
    "check_fraction",
    "check_layer_names",
    "check_model",
    "check_positive_int",
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


def check_model(model, fn):
    """Raises unless ``model`` is a built Sequential or functional Keras model."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{fn} needs a keras.Model (from keras_kd import keras), received: model={model!r}"
        )
    if not getattr(model, "_is_graph_network", False) and not isinstance(model, keras.Sequential):
        raise ValueError(
            f"{fn} needs a Sequential or functional model (rebuild it with keras.Input(...) and layer "
            "calls so that its layers can be rewritten), received: "
            f"model={model.name!r}, a subclassed model"
        )
    if not model.built:
        raise ValueError(
            f"{fn} needs a built model (give it an Input layer or call build() first), received: "
            f"model={model.name!r} with no input shape"
        )
    return model


def check_fraction(name, value, upper_inclusive=False):
    """Raises unless ``value`` is a number in [0, 1) (or [0, 1])."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and 0 <= value <= 1 and (upper_inclusive or value < 1)
    if not ok:
        bound = "]" if upper_inclusive else ")"
        raise ValueError(f"{name} must be a number in [0, 1{bound}, received: {name}={value!r}")
    return float(value)


def check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, received: {name}={value!r}")
    return value


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
