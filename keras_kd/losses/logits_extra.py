"""Distillation losses on the output logits beyond Hinton KD: decoupled KD and multi-teacher KD."""

import numbers

from keras_kd._checks import check_bool, check_positive, check_weights, is_finite_at_least
from keras_kd._compat import keras, tf
from keras_kd.losses import _ops
from keras_kd.losses.base import LogitLoss

# A masked class gets the row's smallest logit minus this margin: exp(-1000) is exactly 0 in
# float32, so the class has probability 0, while every logit stays finite (no inf - inf = NaN).
_MASK_MARGIN = 1000.0
_kl = _ops.kl_divergence


@keras.utils.register_keras_serializable(package="keras_kd")
class DKD(LogitLoss):
    """Decoupled knowledge distillation: the target-class and non-target-class terms weighed apart.

    With ``p = softmax(logits / T)`` and ``t`` the label of an example, DKD splits Hinton's KD loss
    into

    - TCKD, the KL divergence between the binary distributions ``[p_t, 1 - p_t]`` of teacher and
      student (how confident each is in the target class), and
    - NCKD, the KL divergence between the distributions over the non-target classes alone (the
      target masked out and the rest renormalized),

    for which ``KD = TCKD + (1 - p_t_teacher) * NCKD``: plain KD weakens NCKD exactly where the
    teacher is confident. DKD weighs the two freely:

        loss = mean over the batch of (alpha * TCKD + beta * NCKD) * T**2

    Everything is computed from log-softmax values and the target is masked with a finite logit, so
    the loss and its gradient stay finite for logits of magnitude 1e4 and more.

    The paper also ramps the whole DKD term up linearly over the first 20 epochs; the Distiller's
    loss weights are constant, and with a large ``beta`` the early steps can be dominated by NCKD.

    ``alpha`` here is DKD's own weight of TCKD; it is unrelated to the ``alpha`` of
    ``keras_kd.Distiller`` (the weight of the hard-label loss), and the two do not interact.

    The loss needs the labels (``uses_labels = True``): the Distiller passes integer class ids as
    ``labels=``, and the teacher's top-1 class for unlabeled examples.

    With ``standardize=True`` each example's logits, the teacher's and the student's separately, are
    z-scored over all classes before the temperature and the split (as Sun et al. do for DKD):
    ``temperature`` is then the base temperature, and the loss ignores a positive scale and a shift
    of either model's logits. See ``keras_kd.losses.LogitsKD`` for the temperature semantics.

    Papers: Zhao, Cui, Song, Qiu & Liang (2022), "Decoupled Knowledge Distillation";
    Sun, Ren, Li, Wang & Cao (2024), "Logit Standardization in Knowledge Distillation"
    (``standardize=True``).

    Args:
        alpha: Weight of TCKD, >= 0. The paper's default is 1.
        beta: Weight of NCKD, >= 0. The paper uses 8 on CIFAR-100 (its default here) and 0.5 on
            ImageNet. ``alpha`` and ``beta`` must not both be 0.
        temperature: Softening temperature ``T`` > 0 (4 in the paper); with ``standardize=True``
            the base temperature (2 in Sun et al.).
        standardize: Whether to z-score each example's logits before the softmax.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer on ``(teacher_logits, student_logits, labels=class_ids)`` returns a scalar
        float32 tensor. The teacher side gets no gradient.

    Raises:
        ValueError: If a weight is negative or not finite, both are 0, ``temperature`` is not > 0,
            ``standardize`` is not a bool, the two logits' class counts differ, or ``labels`` is missing or of another batch size.

    Example:
        >>> loss = DKD(alpha=1.0, beta=8.0, temperature=4.0)
        >>> value = loss(tf.constant([[3.0, 1.0, 0.0]]), tf.constant([[1.0, 2.0, 0.0]]),
        ...              labels=tf.constant([0]))
    """

    uses_labels = True

    def __init__(self, alpha=1.0, beta=8.0, temperature=4.0, standardize=False, **kwargs):
        kwargs.setdefault("name", "dkd")
        super().__init__(**kwargs)
        self.alpha, self.beta = check_weights(alpha=alpha, beta=beta)
        self.temperature = check_positive("temperature", temperature)
        self.standardize = check_bool("standardize", standardize)

    def call(self, teacher, student, labels=None):
        if labels is None:
            raise ValueError(
                f"{self.name}: DKD needs labels= (integer class ids of shape (batch,)); the "
                "Distiller passes them because DKD.uses_labels is True, received: labels=None"
            )
        target = _target_mask(self.name, labels, teacher)
        if self.standardize:
            teacher, student = _ops.zscore(teacher), _ops.zscore(student)
        t = self.temperature
        teacher, student = teacher / t, student / t
        tckd = _kl(_log_binary(teacher, target), _log_binary(student, target))
        nckd = _kl(
            tf.nn.log_softmax(_mask_out(teacher, target), axis=-1),
            tf.nn.log_softmax(_mask_out(student, target), axis=-1),
        )
        return tf.reduce_mean(self.alpha * tckd + self.beta * nckd) * (t * t)

    def get_config(self):
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "beta": self.beta,
            "temperature": self.temperature,
            "standardize": self.standardize,
        }


@keras.utils.register_keras_serializable(package="keras_kd")
class MultiTeacherKD(LogitLoss):
    """Knowledge distillation from several teachers through their averaged soft targets.

    The target is the weighted average of the teachers' softened distributions,
    ``q = sum_i w_i * softmax(teacher_i / T)`` with the weights normalized to sum to 1, and

        loss = mean over the batch of KL(q || softmax(student / T)) * T**2

    With one teacher (or identical teachers) this is ``keras_kd.losses.LogitsKD``. The average is
    computed in log space, so it stays finite for logits of magnitude 1e4; teachers of weight 0 are
    left out. Adding a constant to any teacher's logits or to the student's changes nothing.

    With ``standardize=True`` each teacher's logits and the student's are z-scored per example
    before the temperature, each model separately: ``temperature`` is then the base temperature, and
    a positive scale and a shift of any model's logits change nothing. See
    ``keras_kd.losses.LogitsKD`` for the temperature semantics.

    ``multi_teacher = True``: ``ensemble`` keeps the teachers apart, so the Distiller passes a list
    of teacher logit tensors, one per teacher, in the order of ``teacher_weights`` (a list of one
    for a single teacher). Any other logit loss sees several teachers as one ensemble of equal
    weights; this one weighs them.

    Papers: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network" (soft
    targets of an ensemble); You, Xu, Xu & Tao (2017), "Learning from Multiple Teacher Networks";
    Sun, Ren, Li, Wang & Cao (2024), "Logit Standardization in Knowledge Distillation"
    (``standardize=True``).

    Args:
        temperature: Softening temperature ``T`` > 0.
        teacher_weights: One weight >= 0 per teacher, not all 0, normalized to sum to 1; ``None``
            weighs the teachers equally.
        standardize: Whether to z-score each example's logits before the softmax.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer on ``([teacher_logits, ...], student_logits)`` returns a scalar float32
        tensor. The teachers get no gradient.

    Raises:
        ValueError: If ``temperature`` is not > 0, ``standardize`` is not a bool, or
            ``teacher_weights`` holds a negative or non-finite weight or only zeros; at call time, if ``teachers`` is not a non-empty list,
            its length differs from the number of ``teacher_weights``, or class counts differ.

    Example:
        >>> loss = MultiTeacherKD(temperature=4.0, teacher_weights=[2.0, 1.0])
        >>> value = loss([tf.constant([[2.0, 0.0]]), tf.constant([[0.0, 1.0]])],
        ...              tf.constant([[1.0, 0.5]]))
    """

    multi_teacher = True

    def __init__(self, temperature=4.0, teacher_weights=None, standardize=False, **kwargs):
        kwargs.setdefault("name", "multi_teacher_kd")
        super().__init__(**kwargs)
        self.temperature = check_positive("temperature", temperature)
        self.teacher_weights = _validate_teacher_weights(teacher_weights)
        self.standardize = check_bool("standardize", standardize)

    def call(self, teachers, student, labels=None):
        del labels  # the soft targets alone
        if not isinstance(teachers, (list, tuple)) or not teachers:
            raise ValueError(
                f"{self.name}: teachers must be a non-empty list of teacher logit tensors, one per "
                f"teacher, received: {type(teachers).__name__}"
            )
        weights = self.teacher_weights or [1.0] * len(teachers)
        if len(weights) != len(teachers):
            raise ValueError(
                f"{self.name}: teacher_weights has {len(weights)} weights ({weights}) but "
                f"{len(teachers)} teachers were given; pass one weight per teacher"
            )
        t = self.temperature
        standardize = _ops.zscore if self.standardize else tf.identity
        teachers = [standardize(logits) for logits in teachers]
        log_target = _ops.log_mean_probabilities(teachers, t, weights)
        kl = _kl(log_target, tf.nn.log_softmax(standardize(student) / t, axis=-1))
        return tf.reduce_mean(kl) * (t * t)

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "teacher_weights": self.teacher_weights,
            "standardize": self.standardize,
        }


def _mask_out(logits, mask):
    """Replaces the masked logits by a finite value far below the row minimum (probability 0)."""
    floor = tf.stop_gradient(tf.reduce_min(logits, axis=-1, keepdims=True)) - _MASK_MARGIN
    return tf.where(mask, floor, logits)


def _log_binary(logits, target):
    """``[log p_t, log(1 - p_t)]`` per row, ``log(1 - p_t)`` as a log-sum-exp (no cancellation)."""
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    log_target = tf.reduce_sum(tf.where(target, log_probs, tf.zeros_like(log_probs)), axis=-1)
    log_rest = tf.reduce_logsumexp(_mask_out(log_probs, target), axis=-1)
    return tf.stack([log_target, log_rest], axis=-1)


def _target_mask(name, labels, logits):
    """A boolean (batch, classes) mask of each row's label; checks the labels' shape and range."""
    labels = tf.cast(labels, tf.int32)
    if labels.shape.rank == 2 and labels.shape[-1] == 1:
        labels = labels[:, 0]
    if labels.shape.rank != 1:
        raise ValueError(
            f"{name}: labels must be integer class ids of shape (batch,), received shape "
            f"{labels.shape}"
        )
    batch = logits.shape[0]
    if labels.shape[0] is not None and batch is not None and labels.shape[0] != batch:
        raise ValueError(
            f"{name}: labels have shape {labels.shape} but the logits have shape {logits.shape}; "
            "both need the same batch size"
        )
    classes = tf.shape(logits)[-1]
    checks = [
        tf.debugging.assert_non_negative(labels, message=f"{name}: labels must be >= 0"),
        tf.debugging.assert_less(labels, classes, message=f"{name}: labels must be < class count"),
    ]
    with tf.control_dependencies(checks):
        return tf.equal(labels[:, None], tf.range(classes)[None, :])


def _validate_teacher_weights(teacher_weights):
    if teacher_weights is None:
        return None
    message = "teacher_weights must be a list of finite numbers >= 0, one per teacher, not all 0"
    if isinstance(teacher_weights, (str, bytes, numbers.Number)) or not hasattr(
        teacher_weights, "__iter__"
    ):
        raise ValueError(f"{message}, received: teacher_weights={teacher_weights!r}")
    weights = list(teacher_weights)
    if not all(is_finite_at_least(w) for w in weights) or not sum(weights) > 0:
        raise ValueError(f"{message}, received: teacher_weights={teacher_weights!r}")
    return [float(w) for w in weights]
