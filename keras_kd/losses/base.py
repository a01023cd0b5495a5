"""The loss contract: every distillation loss subclasses ``LogitLoss`` or ``FeatureLoss``.

A distillation loss is a Keras layer that maps teacher and student outputs to a scalar float32
tensor, the mean loss over the batch. The Distiller decides what to pass by the loss's class:

- ``LogitLoss``: ``call(teacher_logits, student_logits, labels=None)`` on the two models' output
  logits. Several teachers arrive as one ensemble: the Distiller passes
  ``loss.ensemble([teacher_logits, ...])``, by default the logits of the teachers' mean softened
  prediction (``keras_kd.losses._ops.ensemble_logits``). ``labels=`` (integer class ids of shape
  ``(batch,)``) is passed to losses with ``uses_labels = True``.
- ``FeatureLoss`` (``keras_kd.losses._feature_base``): ``pairs=[(teacher_layer, student_layer),
  ...]`` names tapped layers; ``build(teacher_shapes, student_shapes)`` checks their shapes and
  creates adapters before training; ``call(teacher_features, student_features)`` takes one tensor
  per pair.

Both bases cast their inputs to float32 and stop the teacher's gradient before ``call`` runs, so a
subclass's ``call`` holds only its math. A layer that subclasses neither is refused by the
Distiller. README "Writing your own loss" shows one of each.
"""

from keras_kd._compat import keras, tf
from keras_kd.losses import _ops


class DistillationLoss(keras.layers.Layer):
    """The common root of ``LogitLoss`` and ``FeatureLoss``; subclass one of those, not this.

    It makes the layer float32 (a loss stays float32 under mixed precision). The Distiller refuses
    a direct subclass: it would not say whether it takes logits or features.

    Args:
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Example:
        >>> isinstance(keras_kd.losses.LogitsKD(), DistillationLoss)
        True
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)


class LogitLoss(DistillationLoss):
    """Base class of the losses on logits: ``call(teacher_logits, student_logits, labels=None)``.

    Calling the layer casts both logits to float32, stops the teacher's gradient and checks that
    teacher and student have the same number of classes (the last axis); then ``call`` computes the
    loss. A subclass implements ``call`` and lists its constructor arguments in ``get_config``.

    Class attributes a subclass may set:

    - ``uses_labels`` (default ``False``): the Distiller passes ``labels=``, integer class ids of
      shape ``(batch,)`` (the teacher's top-1 for unlabeled examples).
    - ``multi_teacher`` (default ``False``): ``call`` takes a list of teacher logits, one per
      teacher, instead of one ensemble (``MultiTeacherKD``, which weighs each teacher).
    - ``temperature`` (default 1): the temperature at which ``ensemble`` averages several teachers;
      losses with a ``temperature`` argument set it.

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".

    Args:
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer on ``(teacher_logits, student_logits)`` returns what ``call`` returns: a
        scalar float32 tensor.

    Raises:
        ValueError: At call time, if a teacher's class count differs from the student's.

    Example:
        >>> class MeanSquaredLogits(LogitLoss):
        ...     def call(self, teacher_logits, student_logits, labels=None):
        ...         return tf.reduce_mean(tf.square(teacher_logits - student_logits))
        >>> value = MeanSquaredLogits()(tf.ones((2, 3)), tf.zeros((2, 3)))
    """

    pairs = None  # logit losses tap no layers
    uses_labels = False
    multi_teacher = False
    temperature = 1.0

    def __call__(self, teacher_logits, student_logits, *args, **kwargs):
        teacher_logits = _frozen(teacher_logits)
        student_logits = as_float32(student_logits)
        teachers = teacher_logits if isinstance(teacher_logits, list) else [teacher_logits]
        for teacher in teachers:
            if teacher is not None:
                check_same_classes(self.name, teacher, student_logits)
        return super().__call__(teacher_logits, student_logits, *args, **kwargs)

    def ensemble(self, teacher_logits):
        """What ``call`` receives as ``teacher_logits`` when the Distiller has these teachers.

        One teacher's logits come back unchanged. Several become one tensor whose softmax at
        ``self.temperature`` is the mean of the teachers' (``_ops.ensemble_logits``), the soft
        targets of an ensemble (Hinton et al. 2015); with ``multi_teacher = True`` the list itself.
        Override it to combine teachers otherwise.

        Args:
            teacher_logits: A non-empty list of logit tensors, one per teacher.

        Returns:
            A logits tensor, or the list when ``multi_teacher`` is ``True``.

        Example:
            >>> logits = LogitsKD(temperature=4.0).ensemble([teacher_a_logits, teacher_b_logits])
        """
        if self.multi_teacher:
            return list(teacher_logits)
        return _ops.ensemble_logits(teacher_logits, self.temperature)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "pairs" in config and config["pairs"] is None:
            del config["pairs"]  # written by keras_kd versions whose logit losses took pairs=None
        return cls(**config)


def _frozen(logits):
    """Float32 logits (a tensor, a list of them or ``None``) that pass no gradient back."""
    if isinstance(logits, (list, tuple)):
        return [_frozen(t) for t in logits]
    return None if logits is None else tf.stop_gradient(as_float32(logits))


def check_same_classes(name, teacher, student):
    """Raises ``ValueError`` naming both shapes unless the two logits' last axes are equal."""
    t_classes, s_classes = teacher.shape[-1], student.shape[-1]
    if t_classes is not None and s_classes is not None and t_classes != s_classes:
        raise ValueError(
            f"{name}: teacher logits have shape {teacher.shape} but student logits have shape "
            f"{student.shape}; both must have the same number of classes, received: "
            f"teacher=<tensor of shape {teacher.shape}>, student=<tensor of shape {student.shape}>"
        )


def as_float32(tensor):
    """Casts a (possibly float16 under mixed precision) tensor to float32 for a stable loss."""
    return tf.cast(tensor, tf.float32)
