"""Teachers that are not tf_keras models: Keras 3 models, SavedModels, .tflite files, callables.

Each kind is wrapped in a ``ForeignTeacher``: a frozen function from an input batch to float32
logits that the Distiller calls like a tf_keras teacher, in inference mode. This module holds the
base classes and the Keras 3 and callable kinds; ``keras_kd.teachers.files`` the file kinds. Teachers that run
outside TensorFlow's graph (a ``.tflite`` file in LiteRT, a Python callable) run through
``tf.numpy_function``. A foreign teacher goes through the teacher-output cache like any other
(``keras_kd.cache``), so it runs once per dataset; under augmentation it runs live on each batch.

Logit losses work with every kind. Feature losses tap a teacher's layers, which only a Keras 3
Sequential or Functional teacher exposes; the other kinds refuse feature losses with an error.
"""

import hashlib
import os
import warnings

import numpy as np

from keras_kd._compat import tf
from keras_kd._keras3 import import_keras3


class ForeignTeacher:
    """Base of the teachers that are not tf_keras models: a frozen batch -> logits function.

    Args:
        name: The teacher's name, used in messages and metrics.
        output_shape: Static shape of the logits, batch axis first (``None`` when unknown).
    """

    kind = "foreign teacher"

    def __init__(self, name, output_shape=None):
        self.name = name
        self.output_shape = None if output_shape is None else tf.TensorShape(output_shape)

    def __call__(self, inputs, training=False):
        """Returns the teacher's float32 logits for ``inputs``; ``training`` is ignored (frozen)."""
        del training
        return tf.cast(self.call(inputs), tf.float32)

    def call(self, inputs):
        raise NotImplementedError

    def tap(self, layer_names):
        """Prepares features for ``layer_names``; only a Keras 3 graph teacher has layers to tap.

        Raises:
            ValueError: Always for kinds without layers.
        """
        raise ValueError(
            f"losses pair teacher layers {list(layer_names)}, but teacher {self.name!r} is a "
            f"{self.kind}, whose layers cannot be tapped; feature losses need a Keras teacher (a "
            "tf_keras model, or a Keras 3 Sequential or Functional model). Use a logit loss such "
            "as keras_kd.losses.LogitsKD with this teacher, or pass the Keras model it came "
            f"from, received: teacher={self!r}"
        )

    def feature_shapes(self):
        """Returns ``{layer_name: static shape}`` of the tapped layers (``{}`` without taps)."""
        return {}

    def fingerprint(self):
        """Bytes that change when the teacher's outputs may change (the teacher cache's key)."""
        return f"{type(self).__name__}:{self.name}".encode()

    def _fingerprint_with(self, weights):
        """``fingerprint`` of this kind and name digested with the values of ``weights``."""
        digest = hashlib.blake2b(ForeignTeacher.fingerprint(self), digest_size=16)
        for weight in weights:
            digest.update(np.ascontiguousarray(weight.numpy()).data)
        return digest.digest()

    def get_config(self):
        """The config that rebuilds this teacher (``keras_kd.teachers.deserialize``).

        Raises:
            ValueError: For kinds that live only in memory (Keras 3 models, callables).
        """
        raise ValueError(
            f"a Distiller whose teacher is a {self.kind} ({self.name!r}) cannot be serialized; "
            "save the student alone with Distiller.save_student, or give the teacher as a "
            ".tflite file or SavedModel directory"
        )

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


class Keras3Teacher(ForeignTeacher):
    """A Keras 3 model (TensorFlow backend) as a teacher, run as it is (no conversion).

    A Sequential or Functional Keras 3 teacher can be tapped by feature losses, by layer name.

    Args:
        model: A built Keras 3 ``keras.Model`` that outputs logits.

    Raises:
        ValueError: If Keras 3 does not run on the TensorFlow backend, the model is not built, or it
            ends in a softmax.

    Example:
        >>> import keras  # Keras 3
        >>> teacher = Keras3Teacher(keras.saving.load_model("teacher.keras"))
        >>> distiller = keras_kd.Distiller(student=student, teacher=teacher)
    """

    kind = "Keras 3 model"

    def __init__(self, model):
        keras3 = import_keras3()
        if keras3.backend.backend() != "tensorflow":
            raise ValueError(
                f"a Keras 3 teacher must run on the TensorFlow backend, received: teacher="
                f"{model.name!r} with KERAS_BACKEND={keras3.backend.backend()!r}; set "
                "KERAS_BACKEND=tensorflow, or pass a callable from a numpy batch to numpy logits"
            )
        if not model.built:
            raise ValueError(
                f"teacher must be a built model, received: teacher={model.name!r} with no input "
                "shape; give it an Input layer or call it once first"
            )
        from keras.src.models.functional import Functional

        graph = isinstance(model, (keras3.Sequential, Functional)) and bool(model.inputs)
        last = model.layers[-1] if graph and model.layers else None
        activation = getattr(last, "activation", None)
        if isinstance(last, keras3.layers.Softmax) or activation is keras3.activations.softmax:
            raise ValueError(
                f"teacher model {model.name!r} ends in a softmax (layer {last.name!r}); teacher "
                f"must output logits, so remove the final softmax, received: teacher={model.name!r}"
            )
        super().__init__(model.name, model.outputs[0].shape if graph else None)
        self.model = model
        self._graph = graph
        self._names = []
        self._extractor = None

    def call(self, inputs):
        return self.model(inputs, training=False)

    def tap(self, layer_names):
        names = list(dict.fromkeys([*self._names, *layer_names]))
        if not self._graph:
            raise ValueError(
                f"teacher model {self.name!r} is a subclassed Keras 3 model, so its layers cannot "
                f"be tapped for {list(layer_names)}; feature losses need a Sequential or "
                "Functional teacher, or use a logit loss such as keras_kd.losses.LogitsKD"
            )
        known = [layer.name for layer in self.model.layers]
        for name in names:
            if name not in known:
                raise ValueError(
                    f"teacher model {self.name!r} has no layer named {name!r}; its layers are "
                    f"{known}"
                )
        outputs = [self.model.get_layer(name).output for name in names]
        inputs = self.model.inputs
        self._extractor = import_keras3().Model(
            inputs[0] if len(inputs) == 1 else inputs, [self.model.outputs[0], *outputs]
        )
        self._names = names

    def call_with_features(self, inputs, training=None):
        """Returns ``(logits, {layer_name: output})`` for the tapped layers, in one pass."""
        del training
        outputs = self._extractor(inputs, training=False)
        return tf.cast(outputs[0], tf.float32), dict(zip(self._names, outputs[1:]))

    def feature_shapes(self):
        if self._extractor is None:
            return {}
        return {
            n: tf.TensorShape(t.shape) for n, t in zip(self._names, self._extractor.outputs[1:])
        }

    def fingerprint(self):
        return self._fingerprint_with(self.model.weights)


class NumpyTeacher(ForeignTeacher):
    """Base of teachers computed in numpy outside TensorFlow's graph, via ``tf.numpy_function``.

    Subclasses implement ``predict(x)``: a float32 numpy batch in, numpy logits out.
    """

    def predict(self, x):
        raise NotImplementedError

    def _checked(self, x):
        logits = np.asarray(self.predict(np.asarray(x, dtype=np.float32)))
        if logits.ndim < 2 or len(logits) != len(x) or not np.issubdtype(logits.dtype, np.number):
            raise ValueError(
                f"teacher {self.name!r} must return numeric logits of shape (batch, classes) for "
                f"a batch of {len(x)}, received: an array of shape {logits.shape} and dtype "
                f"{logits.dtype}"
            )
        if self.output_shape is not None and logits.shape[1:] != tuple(self.output_shape[1:]):
            raise ValueError(
                f"teacher {self.name!r} returned logits of shape {logits.shape}, but its output "
                f"shape is {self.output_shape}"
            )
        return logits.astype(np.float32)

    def call(self, inputs):
        if tf.nest.is_nested(inputs):
            raise ValueError(
                f"teacher {self.name!r} (a {self.kind}) takes one input array, received: inputs "
                f"of structure {tf.nest.map_structure(lambda t: t.shape, inputs)}"
            )
        x = tf.convert_to_tensor(inputs)
        if tf.executing_eagerly():
            return tf.constant(self._checked(x.numpy()))
        _warn_if_one_inter_op_thread(self)
        logits = tf.numpy_function(self._checked, [x], tf.float32, name="foreign_teacher")
        known = self.output_shape[1:] if self.output_shape is not None else None
        logits.set_shape(tf.TensorShape([x.shape[0]]).concatenate(known or tf.TensorShape(None)))
        return logits


def _warn_if_one_inter_op_thread(teacher):
    """Warns when TensorFlow has one inter-op thread: a teacher running TensorFlow would hang.

    ``keras_kd._compat`` gives TensorFlow a second inter-op thread on one CPU, unless the user set
    ``TF_NUM_INTEROP_THREADS`` or called ``tf.config.threading.set_inter_op_parallelism_threads``.
    """
    setting = os.environ.get("TF_NUM_INTEROP_THREADS", "").strip()
    if setting == "1" or tf.config.threading.get_inter_op_parallelism_threads() == 1:
        warnings.warn(
            f"teacher {teacher.name!r} (a {teacher.kind}) runs through tf.numpy_function while "
            "TensorFlow has one inter-op thread (TF_NUM_INTEROP_THREADS=1 or "
            "tf.config.threading.set_inter_op_parallelism_threads(1)): if it runs TensorFlow "
            "itself (a Keras 3 model's predict, a tf.function) it waits for that thread while "
            "the training step holds it, and training hangs. Allow at least 2 inter-op threads.",
            RuntimeWarning,
            stacklevel=2,
        )


class CallableTeacher(NumpyTeacher):
    """Any Python callable from a numpy batch to numpy logits as a teacher (PyTorch, JAX, ...).

    The callable receives float32 arrays of shape ``(batch, *input_shape)`` and must return logits
    of shape ``(batch, classes)``. Its outputs are assumed fixed: the teacher cache does not see
    inside it, so make a new Distiller if it changes.

    Args:
        fn: The callable, e.g. ``lambda x: torch_model(torch.from_numpy(x)).detach().numpy()``.
        name: Name used in messages; default the callable's ``__name__``.
        output_shape: Shape of the logits, e.g. ``(None, 10)``. When ``None`` the Distiller finds
            it by calling ``fn`` once on two zero inputs of the student's input shape.

    Raises:
        TypeError: If ``fn`` is not callable.

    Example:
        >>> teacher = CallableTeacher(lambda x: jax_apply(params, x), name="jax_teacher")
        >>> distiller = keras_kd.Distiller(student=student, teacher=teacher)
    """

    kind = "Python callable"

    def __init__(self, fn, name=None, output_shape=None):
        if not callable(fn):
            raise TypeError(f"fn must be callable, received: fn={fn!r}")
        default = getattr(fn, "__name__", type(fn).__name__)
        super().__init__(name or ("callable" if default == "<lambda>" else default), output_shape)
        self.fn = fn

    def predict(self, x):
        return self.fn(x)

    def probe(self, input_shape):
        """Finds ``output_shape`` by calling the callable on two zero inputs of ``input_shape``."""
        if self.output_shape is not None or input_shape is None or None in input_shape:
            return
        logits = self._checked(np.zeros((2, *input_shape), np.float32))
        self.output_shape = tf.TensorShape([None, *logits.shape[1:]])
