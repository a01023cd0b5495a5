"""One layer at a time between Keras 3 and tf_keras: its class, its config and its weights.

A layer is rebuilt in the other Keras from its ``get_config()``: the class of the same name, the
arguments that class accepts, initializers, regularizers and constraints rebuilt as objects of the
other Keras, and the dtype policy as its name. An argument the other class lacks is dropped only
when it holds the source class's default (it then changes nothing, e.g. Keras 3's ``lora_rank=None``);
any other value is refused, since the rebuilt layer would compute something else. Weights are
copied by name (``kernel``, ``moving_mean``, ...) and shape after the new layer is built.
"""

import functools
import inspect

import numpy as np

# Layers whose config and weights mean the same in Keras 3 and tf_keras (checked by the round-trip
# tests in tests/bridge/). Models (Sequential, Functional) nest.
SUPPORTED_LAYERS = (
    "Activation",
    "Add",
    "AlphaDropout",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "BatchNormalization",
    "Concatenate",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Cropping1D",
    "Cropping2D",
    "Dense",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "Dot",
    "Dropout",
    "ELU",
    "Embedding",
    "Flatten",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GroupNormalization",
    "Identity",
    "LayerNormalization",
    "LeakyReLU",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Maximum",
    "Minimum",
    "Multiply",
    "Permute",
    "PReLU",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Reshape",
    "SeparableConv1D",
    "SeparableConv2D",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "Subtract",
    "UpSampling1D",
    "UpSampling2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
)

# Activation names that compute the same function in both Kerases (hard_sigmoid does not: tf_keras's
# is 0.2 * x + 0.5 clipped, Keras 3's is relu6(x + 3) / 6).
ACTIVATIONS = (
    "elu",
    "exponential",
    "gelu",
    "leaky_relu",
    "linear",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "swish",
    "tanh",
)

# Arguments renamed between the two: {class: {Keras 3 name: tf_keras name}}.
_RENAMED = {"LeakyReLU": {"negative_slope": "alpha"}}
# Arguments that only describe shapes already fixed by the graph.
_IGNORED = ("input_length", "batch_input_shape", "input_shape", "build_input_shape")
_OBJECT_KINDS = {
    "initializer": "initializers",
    "regularizer": "regularizers",
    "constraint": "constraints",
}

_HINTS = {
    "Lambda": "a Lambda layer holds Python code that cannot be translated; replace it with "
    "built-in layers",
    "TFOpLambda": "it is a TensorFlow function called on a Keras tensor (e.g. tf.nn.relu(x)); use "
    "the matching keras.layers layer instead",
    "SlicingOpLambda": "it is a tensor slice (x[:, 1:]) on a Keras tensor; use keras.layers.Cropping "
    "or Reshape layers instead",
    "PruneLowMagnitude": "it is a tfmot pruning wrapper; strip the model first with "
    "keras_kd.compress.strip(model)",
    "ClusterWeights": "it is a tfmot clustering wrapper; strip the model first with "
    "keras_kd.compress.strip(model)",
    "QuantizeWrapperV2": "a quantization-aware model's int8 behaviour has no Keras 3 equivalent; "
    "export it with keras_kd.export.to_tflite, or convert the float student before "
    "keras_kd.compress.quantize",
    "QuantizeLayer": "a quantization-aware model's int8 behaviour has no Keras 3 equivalent; export "
    "it with keras_kd.export.to_tflite, or convert the float student before "
    "keras_kd.compress.quantize",
}


class UnsupportedLayerError(ValueError):
    """A layer that ``keras_kd.bridge`` cannot rebuild in the other Keras; the message says why."""


class Side:
    """One of the two Kerases: its module and how its functional graphs are read.

    Args:
        module: The ``keras`` module (Keras 3) or ``tf_keras``.
        name: ``"Keras 3"`` or ``"tf_keras"``, used in messages.
    """

    def __init__(self, module, name):
        self.module = module
        self.name = name
        self.is_keras3 = name == "Keras 3"

    def node_layer(self, node):
        return node.operation if self.is_keras3 else node.layer

    def node_call(self, node):
        if self.is_keras3:
            return node.arguments.args, node.arguments.kwargs
        return node.call_args, node.call_kwargs

    def is_symbolic(self, value):
        return type(value).__name__ == "KerasTensor"


def unsupported(layer, function, reason=None):
    """The error for a layer that cannot be converted: its name, class and what to do."""
    cls = type(layer)
    reason = reason or _HINTS.get(cls.__name__)
    if reason is None:
        if cls.__module__.startswith("keras.src.ops"):
            reason = (
                "it is a keras.ops call on a Keras tensor, not a layer; use the matching "
                "keras.layers layer instead (e.g. layers.Add, layers.Activation)"
            )
        else:
            reason = (
                "it is not one of keras_kd.bridge.SUPPORTED_LAYERS; replace it with supported "
                "layers"
            )
    teacher_hint = (
        "; a Keras 3 model needs no conversion to be a teacher: keras_kd.Distiller(teacher=model)"
        if function == "from_keras3"
        else ""
    )
    return UnsupportedLayerError(
        f"keras_kd.bridge.{function} cannot convert layer {layer.name!r} of class "
        f"{cls.__module__}.{cls.__qualname__}: {reason}{teacher_hint}"
    )


@functools.lru_cache(maxsize=None)
def _parameters(cls):
    """``{name: default}`` of the keyword arguments ``cls()`` accepts: its ``__init__``'s, and its
    bases' for as long as each ``__init__`` passes ``**kwargs`` on."""
    found = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            break
        for parameter in parameters:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                found.setdefault(parameter.name, parameter.default)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    found.pop("self", None)
    return found


def _is_neutral(value, default):
    if value is None or value is False or value in ((), [], {}, "channels_last"):
        return True
    try:
        return default is not inspect.Parameter.empty and bool(value == default)
    except (TypeError, ValueError):
        return False


def _plain(value):
    """Lists and dicts without TensorFlow's tracking wrappers (ListWrapper, _DictWrapper)."""
    if isinstance(value, (list, tuple)) and type(value) not in (list, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and type(value) is not dict:
        return {k: _plain(v) for k, v in value.items()}
    return value


def _dtype_name(value):
    if isinstance(value, dict):
        return value.get("config", {}).get("name", "float32")
    return getattr(value, "name", value)


def _rebuild_object(value, key, layer, target, function):
    """An initializer, regularizer or constraint of the source Keras as an object of the target's."""
    kind = key.rsplit("_", 1)[-1]
    module = getattr(target.module, _OBJECT_KINDS[kind])
    if isinstance(value, str):
        return module.get(value)
    cls = getattr(module, value.get("class_name", ""), None)
    if cls is None:
        raise unsupported(
            layer, function, f"its {key} {value.get('class_name')!r} has no equivalent"
        )
    accepted = _parameters(cls)
    config = {}
    for name, item in (value.get("config") or {}).items():
        if name in accepted:
            config[name] = item
        elif not _is_neutral(item, inspect.Parameter.empty):
            raise unsupported(
                layer, function, f"its {key} argument {name}={item!r} has no equivalent"
            )
    return cls(**config)


def _activation(value, key, layer, function):
    name = value if isinstance(value, str) else None
    if name not in ACTIVATIONS:
        raise unsupported(
            layer,
            function,
            f"its {key}={value!r} is not an activation that computes the same in both Kerases "
            f"({', '.join(ACTIVATIONS)})",
        )
    return name


def convert_layer(layer, source, target, function):
    """Returns a new, unbuilt layer of ``target`` equivalent to ``layer`` of ``source``.

    Raises:
        UnsupportedLayerError: If the class or one of its arguments has no equivalent.
    """
    name = type(layer).__name__
    cls = getattr(target.module.layers, name, None)
    if (
        name not in SUPPORTED_LAYERS
        or cls is None
        or type(layer) is not getattr(source.module.layers, name, None)
    ):
        raise unsupported(layer, function)
    renamed = _RENAMED.get(name, {})
    if not source.is_keras3:
        renamed = {v: k for k, v in renamed.items()}
    source_defaults = _parameters(type(layer))
    accepted = _parameters(cls)
    kwargs = {}
    for key, value in layer.get_config().items():
        default = source_defaults.get(key, inspect.Parameter.empty)
        key = renamed.get(key, key)
        if key in _IGNORED:
            continue
        value = _plain(value)
        if isinstance(value, list) and len(value) == 1 and type(accepted.get(key)) is int:
            value = value[0]  # tf_keras stores BatchNormalization's axis as a list once built
        if key == "trainable":
            continue  # set on the built layer: some classes take no trainable argument
        if key not in accepted and key not in ("name", "dtype"):
            # Initializers are moot (the weights are copied); anything else must change nothing.
            if key.endswith("_initializer") or _is_neutral(value, default):
                continue
            raise unsupported(
                layer, function, f"its argument {key}={value!r} has no {target.name} equivalent"
            )
        if key == "dtype":
            value = _dtype_name(value)
        elif key.endswith("activation") and value is not None:
            value = _activation(value, key, layer, function)
        elif key.rsplit("_", 1)[-1] in _OBJECT_KINDS and value is not None:
            value = _rebuild_object(value, key, layer, target, function)
        kwargs[key] = value
    new = cls(**kwargs)
    new.trainable = layer.trainable
    return new


def _short_name(variable):
    name = getattr(variable, "path", None) or variable.name
    return name.split(":")[0].rsplit("/", 1)[-1]


def copy_weights(source_layer, target_layer, function):
    """Copies the weights of ``source_layer`` into the built ``target_layer``.

    Weights are matched by name, or in order when the two Kerases name them differently (Keras 3's
    DepthwiseConv2D ``kernel`` is tf_keras's ``depthwise_kernel``); shapes must agree.

    Raises:
        UnsupportedLayerError: If the two layers do not hold the same weights.
    """
    sources, targets = list(source_layer.weights), list(target_layer.weights)
    by_name = {_short_name(w): w for w in sources}
    if len(by_name) == len(sources) and all(_short_name(w) in by_name for w in targets):
        pairs = [(by_name[_short_name(w)], w) for w in targets]
    else:
        pairs = list(zip(sources, targets))
    if len(sources) != len(targets) or any(tuple(s.shape) != tuple(t.shape) for s, t in pairs):
        raise unsupported(
            source_layer,
            function,
            f"it holds weights {[(_short_name(w), tuple(w.shape)) for w in sources]} but its "
            f"converted layer holds {[(_short_name(w), tuple(w.shape)) for w in targets]}",
        )
    for source, target in pairs:
        target.assign(np.asarray(source.numpy()))
