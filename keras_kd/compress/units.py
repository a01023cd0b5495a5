"""Unit and filter pruning: removes whole Dense units and Conv filters, so the model shrinks."""

import numpy as np

from keras_kd._checks import check_fraction, check_model
from keras_kd._compat import keras
from keras_kd.compress import _common

_PRUNABLE = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
# Layers that act on each channel independently and hold no per-channel weights.
_PASS_THROUGH = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
)


def prune_units(model, fraction, layers=None):
    """Returns a smaller copy of ``model`` without the least important units and filters.

    In each pruned ``Dense``, ``Conv1D`` and ``Conv2D`` layer, ``floor(fraction * units)`` units
    (filters) with the smallest L1 norm of their kernel slice are removed (at least one is kept;
    ties go to the lower index), together with everything that only served them downstream: the
    matching channels of ``BatchNormalization`` and ``DepthwiseConv1D``/``DepthwiseConv2D`` layers
    and the matching input rows of the next ``Dense``/``Conv`` kernel, through pooling, dropout,
    activations and ``Flatten`` (whose rows for the removed channels at every position are
    dropped). Unlike weight pruning, the shapes shrink, so the model is smaller and faster on any
    hardware; distill afterwards to recover accuracy. The output layer, and any layer whose
    channels reach a model output, is never pruned, so the output shape is unchanged. The result
    computes exactly what the original computes with the removed units' outgoing connections set
    to zero.

    Paper: Li, Kadav, Durdanovic, Samet & Graf (2017), "Pruning Filters for Efficient ConvNets".

    Args:
        model: A built Sequential or functional Keras model (channels-last). It is not changed.
        fraction: Fraction of the units of each pruned layer to remove, in [0, 1).
        layers: Names of the layers to prune; ``None`` prunes every Dense/Conv1D/Conv2D layer that
            does not feed a model output.

    Returns:
        A new, smaller model with the same inputs and output shapes and the surviving weights.

    Raises:
        ValueError: If ``fraction`` is out of range, ``layers`` names an unknown or unprunable
            layer, or a pruned layer feeds a layer that cannot follow the removal (a merge such
            as ``Add`` or ``Concatenate``, a reshape, a shared layer, ...): the message names it
            and the layers that can be pruned.
        TypeError: If ``model`` is not a Keras model.

    Example:
        >>> smaller = prune_units(student, 0.5)
        >>> smaller.count_params() < student.count_params()
        True
    """
    check_model("model", model, graph=True, caller="prune_units")
    fraction = check_fraction("fraction", fraction)
    names = _common.check_layer_names(model, layers, "prune_units")
    graph = _Graph(model)
    if names is not None:
        wrong = [model.get_layer(n) for n in sorted(names) if not _is_prunable(model.get_layer(n))]
        if wrong:
            raise ValueError(
                f"prune_units prunes Dense, Conv1D and Conv2D layers (channels-last, groups=1); "
                f"{', '.join(_common.layer_kind(layer) for layer in wrong)} is not one"
            )
    candidates = [
        layer
        for layer in model.layers
        if _is_prunable(layer) and (names is None or layer.name in names)
    ]
    traces, failures = {}, {}
    for layer in candidates:
        try:
            traces[layer.name] = graph.trace(layer)
        except _Unsupported as problem:
            failures[layer.name] = str(problem)
    reaching_output = [n for n, why in failures.items() if why == "output"]
    if names is not None and reaching_output:
        raise ValueError(
            f"prune_units never prunes the output layer: the units of {reaching_output} reach a "
            "model output, so removing them would change the output shape"
        )
    blocked = {n: why for n, why in failures.items() if why != "output"}
    if blocked:
        name, why = next(iter(blocked.items()))
        raise ValueError(
            f"prune_units cannot remove units of layer {name!r}: {why}. Prune only the layers "
            f"whose outputs reach no such layer with layers={sorted(traces)}, or use "
            "keras_kd.compress.prune (weight pruning), which keeps every shape"
        )
    keep_out = {name: _keep(model.get_layer(name), fraction) for name in traces}
    slices = {}  # layer name -> indices kept along its input channels
    for name, trace in traces.items():
        for consumer, transform in trace:
            slices[consumer] = transform(keep_out[name])
    return _build(model, keep_out, slices)


class _Unsupported(Exception):
    pass


def _is_prunable(layer):
    if type(layer) not in _PRUNABLE:
        return False
    return (
        getattr(layer, "data_format", "channels_last") == "channels_last"
        and getattr(layer, "groups", 1) == 1
    )


class _Graph:
    """Who consumes each layer's output, from the model config (only this model's own nodes)."""

    def __init__(self, model):
        self.model = model
        config = model.get_config()
        self.consumers = {layer.name: [] for layer in model.layers}
        self.node_counts = {}
        if isinstance(model, keras.Sequential):
            names = [layer.name for layer in model.layers]
            for a, b in zip(names, names[1:]):
                self.consumers[a].append(b)
            self.node_counts = dict.fromkeys(names, 1)
            self.outputs = {names[-1]}
        else:
            for entry in config["layers"]:
                name = entry["config"]["name"]
                self.node_counts[name] = len(entry["inbound_nodes"])
                for node in entry["inbound_nodes"]:
                    for inbound in node:
                        self.consumers[inbound[0]].append(name)
            self.outputs = {output[0] for output in config["output_layers"]}

    def trace(self, layer):
        """[(consumer_name, transform)] where ``transform(keep)`` maps the kept units of ``layer``
        to the indices that ``consumer`` keeps along its input channels; raises ``_Unsupported``."""
        found = []
        frontier = [(layer.name, lambda keep: keep)]
        while frontier:
            name, to_here = frontier.pop()
            if name in self.outputs:
                raise _Unsupported("output")
            for consumer_name in self.consumers[name]:
                consumer = self.model.get_layer(consumer_name)
                if self.node_counts.get(consumer_name, 1) != 1:
                    raise _Unsupported(
                        f"it feeds {_common.layer_kind(consumer)}, which is shared (called more "
                        "than once)"
                    )
                if _is_prunable(consumer):
                    found.append((consumer_name, to_here))
                elif isinstance(consumer, keras.layers.BatchNormalization) and _is_last_axis(
                    consumer
                ):
                    found.append((consumer_name, to_here))
                    frontier.append((consumer_name, to_here))
                elif type(consumer) in _DEPTHWISE and consumer.data_format == "channels_last":
                    found.append((consumer_name, to_here))
                    frontier.append(
                        (
                            consumer_name,
                            _then(to_here, _depthwise_outputs(consumer.depth_multiplier)),
                        )
                    )
                elif (
                    type(consumer) is keras.layers.Flatten
                    and consumer.data_format == "channels_last"
                ):
                    frontier.append(
                        (consumer_name, _then(to_here, _flattened(consumer.input_shape)))
                    )
                elif type(consumer) in _PASS_THROUGH:
                    frontier.append((consumer_name, to_here))
                else:
                    raise _Unsupported(
                        f"it feeds {_common.layer_kind(consumer)}, which prune_units cannot follow "
                        "(merges such as Add/Concatenate, reshapes and custom layers are not "
                        "supported)"
                    )
        return found


def _is_last_axis(layer):
    axis = (
        layer.axis
        if isinstance(layer.axis, int)
        else (layer.axis[0] if len(layer.axis) == 1 else None)
    )
    return axis is not None and axis in (-1, len(layer.input_shape) - 1)


def _then(first, second):
    return lambda keep: second(first(keep))


def _depthwise_outputs(multiplier):
    return lambda keep: (np.asarray(keep)[:, None] * multiplier + np.arange(multiplier)).ravel()


def _flattened(input_shape):
    shape = tuple(input_shape[1:])
    if None in shape:
        raise _Unsupported(f"it feeds a Flatten with an unknown input shape {input_shape}")
    return lambda keep: np.arange(int(np.prod(shape))).reshape(shape)[..., keep].ravel()


def _keep(layer, fraction):
    kernel = layer.kernel.numpy()
    importance = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    units = kernel.shape[-1]
    count = max(1, units - int(np.floor(fraction * units)))
    return np.sort(np.argsort(-importance, kind="stable")[:count])


def _build(model, keep_out, slices):
    def _clone(layer):
        config = layer.get_config()
        if layer.name in keep_out:
            config["units" if isinstance(layer, keras.layers.Dense) else "filters"] = len(
                keep_out[layer.name]
            )
        return layer.__class__.from_config(config)

    with _common.scopes():
        smaller = keras.models.clone_model(model, clone_function=_clone)
    for layer in smaller.layers:
        old = model.get_layer(layer.name)
        weights = old.get_weights()
        if not weights:
            continue
        if isinstance(old, keras.layers.BatchNormalization):
            weights = [w[slices[old.name]] for w in weights] if old.name in slices else weights
        elif type(old) in _DEPTHWISE:
            if old.name in slices:
                keep = slices[old.name]
                weights = [np.take(weights[0], keep, axis=-2)] + [
                    w[_depthwise_outputs(old.depth_multiplier)(keep)] for w in weights[1:]
                ]
        elif _is_prunable(old):
            kernel, rest = weights[0], weights[1:]
            if old.name in slices:
                kernel = np.take(kernel, slices[old.name], axis=-2)
            if old.name in keep_out:
                kernel = kernel[..., keep_out[old.name]]
                rest = [w[keep_out[old.name]] for w in rest]
            weights = [kernel, *rest]
        layer.set_weights(weights)
    return smaller
