"""The early-exit objective: cross-entropy on every exit, distillation into the earlier exits."""

from keras_kd._checks import check_number, check_positive
from keras_kd._compat import keras, tf
from keras_kd.losses import _ops
from keras_kd.losses.base import LogitLoss, as_float32


@keras.utils.register_keras_serializable(package="keras_kd")
class ExitDistillation(LogitLoss):
    """The early-exit objective: each exit's cross-entropy plus distillation into the earlier exits.

    For stacked exit logits ``z_1 ... z_L`` (the last is the model's own output) and labels ``y``:

        loss = sum_i CE(y, z_i)
               + distillation_weight * sum_{i<L} T^2 KL(softmax(stop(z_L)/T) || softmax(z_i/T))
               + teacher_weight * T^2 KL(softmax(teacher/T) || softmax(z_L/T))

    The final exit teaches the earlier ones (self-distillation, its logits stopped so that the deep
    exit is not pulled toward the shallow ones); an external teacher, when given, teaches the final
    exit. ``EarlyExit`` trains with this loss and no teacher; with a teacher, pass it to
    ``keras_kd.Distiller(early_exit, teacher, losses=[ExitDistillation(...)], alpha=0.0)``, whose
    hard loss is then 0 because the labels enter here, on every exit.

    Paper: Teerapittayanon, McDanel & Kung (2016), "BranchyNet: Fast Inference via Early Exiting
    from Deep Neural Networks"; Zhang et al. (2019), "Be Your Own Teacher: Improve the Performance
    of Convolutional Neural Networks via Self Distillation"; Hinton, Vinyals & Dean (2015),
    "Distilling the Knowledge in a Neural Network".

    Args:
        temperature: Softening temperature ``T`` > 0 of both distillation terms.
        distillation_weight: Weight >= 0 of the self-distillation term.
        teacher_weight: Weight >= 0 of the external teacher's term (used only with a teacher).
        **kwargs: Passed to ``keras.layers.Layer`` (``name``).

    Returns:
        Calling the layer on ``(teacher_logits or None, stacked_exit_logits, labels=ids)`` returns a
        scalar float32 tensor; ``terms(...)`` returns the three terms apart.

    Raises:
        ValueError: If an argument is out of range, naming it and its value.

    Example:
        >>> loss = ExitDistillation(temperature=4.0)
        >>> value = loss(None, tf.zeros([2, 3, 10]), labels=tf.constant([1, 2]))
    """

    uses_labels = True

    def __init__(self, temperature=4.0, distillation_weight=1.0, teacher_weight=1.0, **kwargs):
        kwargs.setdefault("name", "exit_distillation")
        super().__init__(**kwargs)
        self.temperature = check_positive("temperature", temperature)
        self.distillation_weight = check_number("distillation_weight", distillation_weight)
        self.teacher_weight = check_number("teacher_weight", teacher_weight)

    def terms(self, teacher, student, labels):
        """Returns ``(cross_entropy, self_distillation, teacher_distillation)``, float32 scalars."""
        student = as_float32(student)  # also when called directly, not through the layer
        if student.shape.rank != 3:
            raise ValueError(
                f"{self.name}: the student must output stacked exit logits (batch, exits, "
                f"classes), received shape {student.shape}; use keras_kd.students.EarlyExit"
            )
        exits = tf.unstack(student, axis=1)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        cross_entropy = tf.add_n(
            [
                tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=z)
                )
                for z in exits
            ]
        )
        final = tf.stop_gradient(exits[-1])
        t = self.temperature
        self_distillation = tf.add_n(
            [_ops.soft_target_loss(final, z, t) for z in exits[:-1]] or [0.0]
        )
        teacher_distillation = tf.constant(0.0)
        if teacher is not None:
            teacher = tf.stop_gradient(as_float32(teacher))
            teacher_distillation = _ops.soft_target_loss(teacher, exits[-1], t)
        return cross_entropy, self_distillation, teacher_distillation

    def call(self, teacher, student, labels=None):
        if labels is None:
            raise ValueError(f"{self.name} needs labels= (integer class ids of shape (batch,))")
        cross_entropy, self_distillation, teacher_distillation = self.terms(
            teacher, student, labels
        )
        return (
            cross_entropy
            + self.distillation_weight * self_distillation
            + self.teacher_weight * teacher_distillation
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "distillation_weight": self.distillation_weight,
            "teacher_weight": self.teacher_weight,
        }
