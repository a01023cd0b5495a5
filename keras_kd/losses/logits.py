"""Distillation losses on the output logits."""

from keras_kd._compat import keras, tf
from keras_kd.losses.base import DistillationLoss, as_float32, validate_positive


@keras.utils.register_keras_serializable(package="keras_kd")
class LogitsKD(DistillationLoss):
    """Soft-target knowledge distillation on logits.

    ``KL(softmax(teacher / T) || softmax(student / T)) * T**2``, averaged over the batch. The ``T**2``
    factor keeps the gradient scale of the soft term independent of the temperature, so that its
    weight against the hard-label loss need not change with ``T``.

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".

    Args:
        temperature: Softening temperature ``T`` > 0. Values of 2 to 8 are common; 4 is the default.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer on ``(teacher_logits, student_logits)`` returns a scalar float32 tensor.

    Raises:
        ValueError: If ``temperature`` is not a number > 0, or if the two logits' class counts differ.

    Example:
        >>> loss = LogitsKD(temperature=4.0)
        >>> value = loss(tf.constant([[2.0, 0.0]]), tf.constant([[1.0, 0.5]]))
    """

    def __init__(self, temperature=4.0, **kwargs):
        kwargs.setdefault("name", "logits_kd")
        super().__init__(**kwargs)
        self.temperature = validate_positive("temperature", temperature)

    def call(self, teacher, student):
        teacher, student = as_float32(teacher), as_float32(student)
        _check_same_classes(self.name, teacher, student)
        t = self.temperature
        teacher_probs = tf.nn.softmax(teacher / t, axis=-1)
        kl = tf.reduce_sum(
            teacher_probs
            * (tf.nn.log_softmax(teacher / t, axis=-1) - tf.nn.log_softmax(student / t, axis=-1)),
            axis=-1,
        )
        return tf.reduce_mean(kl) * (t * t)

    def get_config(self):
        config = super().get_config()
        config.pop("pairs")
        return {**config, "temperature": self.temperature}


def _check_same_classes(name, teacher, student):
    t_classes, s_classes = teacher.shape[-1], student.shape[-1]
    if t_classes is not None and s_classes is not None and t_classes != s_classes:
        raise ValueError(
            f"{name}: teacher logits have shape {teacher.shape} but student logits have shape "
            f"{student.shape}; both must have the same number of classes"
        )
