"""DIST: distillation by matching the correlations of softened class probabilities."""

from keras_kd._checks import check_positive, check_weights
from keras_kd._compat import keras, tf
from keras_kd.losses import _ops
from keras_kd.losses.base import LogitLoss


@keras.utils.register_keras_serializable(package="keras_kd")
class DIST(LogitLoss):
    """Distillation from a stronger teacher: Pearson correlation of softened probabilities.

    With ``p_t = softmax(teacher / T)`` and ``p_s = softmax(student / T)``, both of shape
    ``(batch, classes)``, DIST asks the student to rank and relate the classes as the teacher does,
    not to reproduce its exact probabilities:

    - the inter-class relation, ``1 - mean over examples i of pearson(p_s[i, :], p_t[i, :])``;
    - the intra-class relation, ``1 - mean over classes c of pearson(p_s[:, c], p_t[:, c])``, how
      each class's probability varies across the examples of the batch;

        loss = T**2 * (beta * inter + gamma * intra)

    Pearson correlation ignores a positive scale and a shift of either vector, so the student need
    not match the teacher's confidence, only its relations: this is what lets DIST learn from a
    much stronger teacher. The loss is 0 when the student's logits equal the teacher's (up to the
    epsilon below), is symmetric in teacher and student, ignores a constant added to any row of
    either model's logits (softmax does), and a permutation of the classes or of the examples
    applied to both. It lies in ``[0, 2 * T**2 * (beta + gamma)]``.

    Correlations divide by ``sqrt(ss_a * ss_b + 1e-16)`` (the sums of squared deviations; the
    official code adds 1e-8 to the product of the norms), so a constant row or column correlates 0
    and the value and gradient stay finite. The gradient of a correlation is inversely proportional
    to the spread of its vectors: a student whose logits are exactly equal across classes gets
    very large (finite) gradients. The intra-class term needs at least two examples: with a batch of
    one it is the constant ``gamma * T**2``, with no gradient. Under a ``tf.distribute`` strategy it
    is computed over each replica's batch.

    Defaults: ``beta = gamma = 1`` and ``T = 1``, the paper's ImageNet setting and the class
    defaults of the official code; its other experiments (CIFAR-100, detection, segmentation) use
    ``T = 4``, worth trying when the teacher is confident.

    Paper: Huang, You, Wang, Qian & Xu (2022), "Knowledge Distillation from A Stronger Teacher",
    NeurIPS.

    Args:
        beta: Weight of the inter-class relation, >= 0.
        gamma: Weight of the intra-class relation, >= 0. ``beta`` and ``gamma`` must not both be 0.
        temperature: Softening temperature ``T`` > 0.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer on ``(teacher_logits, student_logits)``, both of shape
        ``(batch, classes)``, returns a scalar float32 tensor. The teacher gets no gradient.

    Raises:
        ValueError: If a weight is negative or not finite, both are 0, ``temperature`` is not a
            number > 0, or (at call time) the logits are not of rank 2 or their shapes differ.

    Example:
        >>> loss = DIST(beta=1.0, gamma=1.0, temperature=1.0)
        >>> teacher = tf.constant([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
        >>> student = tf.constant([[1.0, 0.5, 0.0], [0.0, 1.0, 0.2]])
        >>> value = loss(teacher, student)
    """

    def __init__(self, beta=1.0, gamma=1.0, temperature=1.0, **kwargs):
        kwargs.setdefault("name", "dist")
        super().__init__(**kwargs)
        self.beta, self.gamma = check_weights(beta=beta, gamma=gamma)
        self.temperature = check_positive("temperature", temperature)

    def call(self, teacher, student, labels=None):
        del labels  # DIST relates the classes of the soft targets alone
        _check_same_shape(self.name, teacher, student)
        t = self.temperature
        p_teacher = tf.nn.softmax(teacher / t, axis=-1)
        p_student = tf.nn.softmax(student / t, axis=-1)
        inter = 1.0 - tf.reduce_mean(_ops.pearson_correlation(p_student, p_teacher, axis=1))
        intra = 1.0 - tf.reduce_mean(_ops.pearson_correlation(p_student, p_teacher, axis=0))
        return (t * t) * (self.beta * inter + self.gamma * intra)

    def get_config(self):
        return {
            **super().get_config(),
            "beta": self.beta,
            "gamma": self.gamma,
            "temperature": self.temperature,
        }


def _check_same_shape(name, teacher, student):
    """Both logits must be (batch, classes) of one shape: DIST correlates along both axes."""
    for side, logits in (("teacher", teacher), ("student", student)):
        if logits.shape.rank != 2:
            raise ValueError(
                f"{name}: {side} logits must have shape (batch, classes), received shape "
                f"{logits.shape}"
            )
    if not teacher.shape.is_compatible_with(student.shape):
        raise ValueError(
            f"{name}: teacher logits have shape {teacher.shape} but student logits have shape "
            f"{student.shape}; both must have the same shape (batch, classes)"
        )
