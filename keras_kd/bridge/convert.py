"""Keras 3 <-> tf_keras model conversion: ``from_keras3`` and ``to_keras3``.

A Sequential model becomes a Sequential model and a Functional model a Functional model of the
other Keras: the graph is walked node by node, each layer is rebuilt from its config
(``keras_kd.bridge._layers``), called on the converted inputs, and given the original weights.
Layer names, input names and shared layers are kept, so feature pairs name the same layers on both
sides. Nested models are converted recursively.
"""

from keras_kd._checks import is_graph_model
from keras_kd._compat import keras, tf
from keras_kd._keras3 import import_keras3, is_keras3_model
from keras_kd.bridge import _layers

_TF_KERAS = _layers.Side(keras, "tf_keras")


def _keras3():
    return _layers.Side(import_keras3(), "Keras 3")


def from_keras3(model):
    """Returns a tf_keras model equivalent to the Keras 3 ``model``, with its weights and names.

    The result computes the same outputs (within float32 rounding, 1e-5 on the tested models), so
    it can be distilled, compressed with ``keras_kd.compress`` (tfmot) and exported with
    ``keras_kd.export``. Layer names are kept, so feature pairs name the same layers.

    Args:
        model: A built Keras 3 Sequential or Functional model (TensorFlow backend) made of
            ``keras_kd.bridge.SUPPORTED_LAYERS``.

    Returns:
        A new tf_keras model of the same kind (Sequential or Functional).

    Raises:
        TypeError: If ``model`` is not a Keras 3 model.
        ValueError: If ``model`` is subclassed or not built.
        UnsupportedLayerError: If a layer has no tf_keras equivalent; the message names it.

    Example:
        >>> import keras  # Keras 3
        >>> k3 = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="logits")])
        >>> tf_keras_model = keras_kd.bridge.from_keras3(k3)
    """
    if not is_keras3_model(model):  # no Keras 3 model exists before Keras 3 is imported
        raise TypeError(
            "model must be a Keras 3 keras.Model (import keras), received: "
            f"model={_describe(model)}" + _hint_other(model, "to_keras3")
        )
    return _convert(model, _keras3(), _TF_KERAS, "from_keras3")


def to_keras3(model):
    """Returns a Keras 3 model equivalent to the tf_keras ``model``, with its weights and names.

    Use it on a student after ``keras_kd.compress.strip`` to keep serving or training it in Keras 3.

    Args:
        model: A built tf_keras Sequential or Functional model made of
            ``keras_kd.bridge.SUPPORTED_LAYERS`` (no tfmot wrappers: strip them first).

    Returns:
        A new Keras 3 model of the same kind (Sequential or Functional).

    Raises:
        TypeError: If ``model`` is not a tf_keras model.
        ValueError: If ``model`` is subclassed or not built.
        UnsupportedLayerError: If a layer has no Keras 3 equivalent; the message names it.

    Example:
        >>> small = keras_kd.compress.strip(distiller.student)
        >>> keras3_student = keras_kd.bridge.to_keras3(small)
        >>> keras3_student.save("student.keras")  # loads in Keras 3
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "model must be a tf_keras keras.Model (from keras_kd import keras), received: "
            f"model={_describe(model)}" + _hint_other(model, "from_keras3")
        )
    return _convert(model, _TF_KERAS, _keras3(), "to_keras3")


def _describe(model):
    cls = type(model)
    return f"{getattr(model, 'name', model)!r} ({cls.__module__}.{cls.__qualname__})"


def _hint_other(model, other):
    mine = "tf_keras" if other == "to_keras3" else "Keras 3"
    is_other = is_keras3_model(model) if other == "from_keras3" else isinstance(model, keras.Model)
    return f"; it is a {mine} model already, did you mean keras_kd.bridge.{other}?" * is_other


def _convert(model, source, target, function):
    if isinstance(model, source.module.Sequential):
        return _convert_sequential(model, source, target, function)
    if not _is_functional(model, source):
        raise ValueError(
            f"model must be a Sequential or Functional {source.name} model, received: "
            f"model={_describe(model)}, a subclassed model whose call() is Python code that "
            f"keras_kd.bridge cannot read; rebuild it with the functional API (keras.Input, "
            "layers called on tensors, keras.Model(inputs, outputs))"
            + (
                ", or use it as a teacher as it is: keras_kd.Distiller(teacher=model)"
                if source.is_keras3
                else ""
            )
        )
    return _convert_functional(model, source, target, function)


def _is_functional(model, source):
    if source.is_keras3:
        from keras.src.models.functional import Functional

        return isinstance(model, Functional)
    return is_graph_model(model)


def _check_built(model, source):
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"model must be built with known inputs, received: model={model.name!r} with no input "
            f"shape; give the {source.name} model an Input layer or call it once before converting"
        )


def _new_input(tensor, source, target):
    shape = tuple(tensor.shape)
    dtype = tensor.dtype if isinstance(tensor.dtype, str) else tf.as_dtype(tensor.dtype).name
    name = tensor._keras_history[0].name
    return target.module.Input(shape=shape[1:], batch_size=shape[0], dtype=dtype, name=name)


def _layer(layer, source, target, function):
    """A converted layer (its weights copied once it is built), or a converted nested model."""
    if isinstance(layer, source.module.Model):
        return _convert(layer, source, target, function), None
    return _layers.convert_layer(layer, source, target, function), layer


def _convert_sequential(model, source, target, function):
    _check_built(model, source)
    new_input = _new_input(model.inputs[0], source, target)
    converted = [_layer(layer, source, target, function) for layer in model.layers]
    new = target.module.Sequential([new_input, *(c for c, _ in converted)], name=model.name)
    for new_layer, old_layer in converted:
        if old_layer is not None:
            _layers.copy_weights(old_layer, new_layer, function)
    return new


def _convert_functional(model, source, target, function):
    _check_built(model, source)
    tensors = {}
    inputs = []
    for tensor in model.inputs:
        tensors[id(tensor)] = _new_input(tensor, source, target)
        inputs.append(tensors[id(tensor)])
    converted = {}  # id(old layer) -> (new layer, old layer or None for a nested model)
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = source.node_layer(node)
            if node.is_input or isinstance(layer, source.module.layers.InputLayer):
                continue
            if id(layer) not in converted:
                converted[id(layer)] = _layer(layer, source, target, function)
            args, kwargs = source.node_call(node)

            def swap(value):
                if source.is_symbolic(value):
                    return tensors[id(value)]
                return value

            args = tf.nest.map_structure(swap, list(args))
            kwargs = tf.nest.map_structure(swap, dict(kwargs))
            outputs = converted[id(layer)][0](*args, **kwargs)
            old_outputs = tf.nest.flatten(node.outputs)
            for old, new in zip(old_outputs, tf.nest.flatten(outputs)):
                tensors[id(old)] = new
    outputs = [tensors[id(t)] for t in model.outputs]
    new = target.module.Model(
        inputs if len(inputs) > 1 else inputs[0],
        outputs if len(outputs) > 1 else outputs[0],
        name=model.name,
    )
    for new_layer, old_layer in converted.values():
        if old_layer is not None:
            _layers.copy_weights(old_layer, new_layer, function)
    return new
