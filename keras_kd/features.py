"""Feature taps: run a model once and get its logits together with named intermediate outputs.

Functional and Sequential models are tapped by building one extractor model over their graph
(``keras.Model(model.inputs, [model.output, *tapped_layer_outputs])``), so each model runs once per
step with every tap. A subclassed model has no graph to tap; it exposes its features by defining

    def call_with_features(self, inputs, training=None):
        return logits, {"feature_name": tensor, ...}

and the names in that dict are the layer names that losses refer to in ``pairs``.
"""

from keras_kd._checks import is_graph_model
from keras_kd._compat import keras, tf
from keras_kd.losses import FeatureLoss
from keras_kd.teachers.foreign import ForeignTeacher


class FeatureTap:
    """Runs ``model`` once per call and returns ``(logits, {layer_name: output})`` for ``layer_names``.

    Args:
        model: A built Keras model (Functional, Sequential, or subclassed with ``call_with_features``).
        layer_names: Names of the layers whose outputs to return. Empty for logits only.
        role: ``"teacher"`` or ``"student"``, used in error messages.

    Raises:
        ValueError: If a layer name is unknown, or a subclassed model without ``call_with_features``
            is asked for features.

    Example:
        >>> tap = FeatureTap(model, ["block2"], role="student")
        >>> logits, features = tap(x, training=False)
    """

    def __init__(self, model, layer_names, role):
        self.model = model
        self.layer_names = list(dict.fromkeys(layer_names))
        self.role = role
        self._extractor = None
        if not self.layer_names:
            return
        if isinstance(model, ForeignTeacher):
            model.tap(self.layer_names)  # a Keras 3 teacher taps its own graph; other kinds refuse
            return
        if hasattr(model, "call_with_features"):
            return
        if not is_graph_model(model):
            raise ValueError(
                f"{role} model {model.name!r} is a subclassed model, so its layers cannot be tapped "
                f"for {self.layer_names}; define call_with_features(inputs, training) returning "
                "(logits, {name: tensor}) on it (see keras_kd.features)"
            )
        known = [layer.name for layer in model.layers]
        outputs = []
        for name in self.layer_names:
            if name not in known:
                raise ValueError(
                    f"{role} model {model.name!r} has no layer named {name!r}; its layers are {known}"
                )
            outputs.append(model.get_layer(name).output)
        self._extractor = keras.Model(
            model.inputs, [model.outputs[0], *outputs], name=f"{model.name}_taps"
        )

    def __call__(self, inputs, training):
        if not self.layer_names:
            return self.model(inputs, training=training), {}
        if self._extractor is None:
            logits, features = self.model.call_with_features(inputs, training=training)
            missing = [n for n in self.layer_names if n not in features]
            if missing:
                raise ValueError(
                    f"{self.role} model {self.model.name!r}: call_with_features returned features "
                    f"{sorted(features)} but losses ask for {missing}"
                )
            return logits, {n: features[n] for n in self.layer_names}
        outputs = self._extractor(inputs, training=training)
        return outputs[0], dict(zip(self.layer_names, outputs[1:]))

    def feature_shapes(self):
        """Returns ``{layer_name: static shape}`` for the tapped layers of a graph model (else ``{}``)."""
        if self._extractor is None:
            return self.model.feature_shapes() if isinstance(self.model, ForeignTeacher) else {}
        return {
            n: tf.TensorShape(t.shape)
            for n, t in zip(self.layer_names, self._extractor.outputs[1:])
        }


class EnsembleTap:
    """Runs several teachers on the same batch and stacks their logits, shape ``(batch, teachers, classes)``.

    Used by the Distiller for a list of teachers, whose losses (``keras_kd.losses.LogitLoss``) see
    them as one ensemble (``LogitLoss.ensemble``); feature taps need a single teacher.

    Args:
        teachers: Built Keras models with the same output shape.

    Example:
        >>> tap = EnsembleTap([teacher_a, teacher_b])
        >>> stacked_logits, _ = tap(x, training=False)
    """

    def __init__(self, teachers):
        self.teachers = list(teachers)

    def __call__(self, inputs, training):
        logits = [tf.cast(t(inputs, training=training), tf.float32) for t in self.teachers]
        return tf.stack(logits, axis=1), {}

    def feature_shapes(self):
        """Returns ``{}``: an ensemble exposes no features."""
        return {}


def paired_layers(losses, side):
    """The layer names that the feature losses among ``losses`` pair on one side.

    Args:
        losses: Distillation loss layers; only ``keras_kd.losses.FeatureLoss`` ones tap layers.
        side: 0 for the teacher, 1 for the student.

    Returns:
        A list of layer names, in the order of the losses and their ``pairs``.

    Example:
        >>> paired_layers([AttentionTransfer(pairs=[("t_block2", "s_block2")])], 1)
        ['s_block2']
    """
    feature_losses = [loss for loss in losses if isinstance(loss, FeatureLoss)]
    return [pair[side] for loss in feature_losses for pair in (loss.pairs or [])]


def teacher_tap(teachers, losses):
    """The tap that runs the teacher (or ensemble) once per call with every feature ``losses`` pair.

    Args:
        teachers: A list of one teacher (``FeatureTap`` with the paired layers) or several
            (``EnsembleTap``).
        losses: The distillation loss layers.

    Returns:
        A ``FeatureTap`` or ``EnsembleTap``.

    Example:
        >>> tap = teacher_tap([teacher], [keras_kd.losses.LogitsKD()])
    """
    if len(teachers) > 1:
        return EnsembleTap(teachers)
    return FeatureTap(teachers[0], paired_layers(losses, 0), role="teacher")
