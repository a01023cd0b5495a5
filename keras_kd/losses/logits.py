"""Distillation losses on the output logits."""

from keras_kd._checks import check_bool, check_positive
from keras_kd._compat import keras
from keras_kd.losses import _ops
from keras_kd.losses.base import LogitLoss


@keras.utils.register_keras_serializable(package="keras_kd")
class LogitsKD(LogitLoss):
    """Soft-target knowledge distillation on logits.

    ``KL(softmax(teacher / T) || softmax(student / T)) * T**2``, averaged over the batch. The ``T**2``
    factor keeps the gradient scale of the soft term independent of the temperature, so that its
    weight against the hard-label loss need not change with ``T``.

    With ``standardize=True`` (Sun et al. 2024), each example's logits are z-scored over the
    classes before the softmax, the teacher's and the student's separately:
    ``(z - mean(z)) / (std(z) + 1e-7)`` with the population standard deviation. ``temperature`` is
    then the paper's *base* temperature: each row is in effect softened by ``T * std(z)``, its own
    temperature, so the loss ignores a positive scale and a shift of either model's logits and the
    student matches the teacher's logit relations rather than their magnitude. The ``T**2`` factor
    stays. Z-scored rows lie within about ``+-sqrt(classes - 1)``, so a given ``T`` flattens them
    far more than raw logits: the paper uses base temperatures of 2 to 3 (and a distillation weight
    of 9 against 0.1 for the labels, on CIFAR-100). Its code divides by the sample standard
    deviation (``K - 1``): its softmax at base temperature ``T`` is this one at
    ``T * sqrt(K / (K - 1))`` for ``K`` classes. A row of equal logits z-scores to zeros (a
    uniform distribution) with a finite gradient, but one of order ``1 / 1e-7``: z-scoring ignores
    the scale of a row, so nearly constant rows get very large gradients.

    Papers: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network";
    Sun, Ren, Li, Wang & Cao (2024), "Logit Standardization in Knowledge Distillation"
    (``standardize=True``).

    Args:
        temperature: Softening temperature ``T`` > 0. Values of 2 to 8 are common; 4 is the default.
            With ``standardize=True`` it is the base temperature (2 to 3 in the paper).
        standardize: Whether to z-score each example's logits before the softmax (see above).
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer on ``(teacher_logits, student_logits)`` returns a scalar float32 tensor.
        The teacher gets no gradient. Several teachers arrive as one ensemble
        (``LogitLoss.ensemble``): their mean softened prediction at ``temperature``.

    Raises:
        ValueError: If ``temperature`` is not a number > 0, ``standardize`` is not a bool, or the
            two logits' class counts differ.

    Example:
        >>> loss = LogitsKD(temperature=4.0)
        >>> value = loss(tf.constant([[2.0, 0.0]]), tf.constant([[1.0, 0.5]]))
        >>> standardized = LogitsKD(temperature=2.0, standardize=True)
        >>> value = standardized(tf.constant([[2.0, 0.0, 1.0]]), tf.constant([[1.0, 0.5, 0.0]]))
    """

    def __init__(self, temperature=4.0, standardize=False, **kwargs):
        kwargs.setdefault("name", "logits_kd")
        super().__init__(**kwargs)
        self.temperature = check_positive("temperature", temperature)
        self.standardize = check_bool("standardize", standardize)

    def call(self, teacher, student, labels=None):
        del labels  # the soft targets alone
        return _ops.soft_target_loss(teacher, student, self.temperature, self.standardize)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "standardize": self.standardize,
        }
