"""Keras 3 <-> tf_keras model conversion, so Keras 3 users get tfmot compression and back.

TensorFlow 2.21 installs Keras 3 (``import keras``) beside tf_keras, the Keras that keras_kd and
tfmot use; both live in one process. ``from_keras3`` turns a Keras 3 Sequential or Functional
model into an equivalent tf_keras model (weights copied, layer names kept, outputs equal within
float32 rounding); ``to_keras3`` turns a (stripped) tf_keras student back into Keras 3. The layers
both directions cover are ``SUPPORTED_LAYERS``; any other layer, or a subclassed model, raises an
``UnsupportedLayerError`` or ``ValueError`` that names it and says what to do.

A Keras 3 teacher needs no conversion: ``keras_kd.Distiller(teacher=keras3_model)`` runs it as it is.

Example:
    >>> import keras  # Keras 3
    >>> import keras_kd as kd
    >>> k3 = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                        keras.layers.Dense(10, name="logits")])
    >>> student = kd.bridge.from_keras3(k3)  # tf_keras: distill, prune, quantize, export
    >>> back = kd.bridge.to_keras3(kd.compress.strip(student))
"""

from keras_kd._keras3 import is_keras3_model
from keras_kd.bridge._layers import ACTIVATIONS, SUPPORTED_LAYERS, UnsupportedLayerError
from keras_kd.bridge.convert import from_keras3, to_keras3

__all__ = [
    "ACTIVATIONS",
    "SUPPORTED_LAYERS",
    "UnsupportedLayerError",
    "from_keras3",
    "is_keras3_model",
    "to_keras3",
]
