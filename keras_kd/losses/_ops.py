"""Shared math of the losses, students and schemes: z-scored logits, the softened KL divergence and
Hinton's soft-target loss, the log of a mean prediction (ensembles), Pearson correlation.

Every function works in the dtype it is given (the losses cast to float32 first) and reduces over
the last axis unless told otherwise. Each is written so that its value and gradient stay finite for
finite inputs, including constant rows and logits of magnitude 1e4.
"""

import math

from keras_kd._compat import tf

# Added to the standard deviation of the logits, as in Sun et al.'s code (1e-7): a constant row
# z-scores to zeros instead of 0 / 0.
ZSCORE_EPSILON = 1e-7
# Added (squared) under the root of Pearson's denominator, as DIST's code adds 1e-8 to the product of
# the norms: a constant vector correlates 0 with anything instead of 0 / 0.
PEARSON_EPSILON = 1e-8
# sqrt's gradient is infinite at 0; its argument is floored here (the floor's own gradient is 0).
_SQRT_FLOOR = 1e-30


def zscore(logits, epsilon=ZSCORE_EPSILON):
    """Standardizes each row of logits over the classes: ``(z - mean(z)) / (std(z) + epsilon)``.

    ``std`` is the population standard deviation (divided by the class count ``K``, as in the
    paper's definition). The result has mean 0 and standard deviation ~1 per row, so it ignores a
    positive scale and a shift of the row. A constant row gives zeros, with a finite gradient.

    Paper: Sun, Ren, Li, Wang & Cao (2024), "Logit Standardization in Knowledge Distillation".

    Args:
        logits: A float tensor of shape ``(..., classes)``.
        epsilon: Added to the standard deviation, > 0.

    Returns:
        A tensor of the shape and dtype of ``logits``.
    """
    centered = logits - tf.reduce_mean(logits, axis=-1, keepdims=True)
    variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
    return centered / (tf.sqrt(tf.maximum(variance, _SQRT_FLOOR)) + epsilon)


def kl_divergence(log_p, log_q):
    """Row-wise ``KL(p || q)`` from log-probabilities; classes of probability 0 in ``p`` add 0.

    Args:
        log_p: Log-probabilities of the target distribution, shape ``(..., classes)``.
        log_q: Log-probabilities of the approximating distribution, same shape.

    Returns:
        A tensor of shape ``(...)``.
    """
    return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)


def softened_kl(teacher, student, temperature, standardize=False):
    """Row-wise ``KL(softmax(teacher / T) || softmax(student / T))``, without the ``T**2`` factor.

    Args:
        teacher: Teacher logits, shape ``(..., classes)``.
        student: Student logits, same shape.
        temperature: Softening temperature ``T`` > 0.
        standardize: Whether to z-score each row of both logits (``zscore``) before dividing by
            ``T``; ``T`` is then the paper's base temperature.

    Returns:
        A tensor of shape ``(...)``.
    """
    if standardize:
        teacher, student = zscore(teacher), zscore(student)
    return kl_divergence(
        tf.nn.log_softmax(teacher / temperature, axis=-1),
        tf.nn.log_softmax(student / temperature, axis=-1),
    )


def soft_target_loss(teacher, student, temperature, standardize=False):
    """Hinton's soft-target loss: the batch mean of ``softened_kl`` times ``T**2``.

    The ``T**2`` factor keeps the gradient scale independent of the temperature.

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".

    Args:
        teacher: Teacher (target) logits, shape ``(batch, classes)``.
        student: Student logits, same shape.
        temperature: Softening temperature ``T`` > 0.
        standardize: As in ``softened_kl``.

    Returns:
        A scalar tensor.

    Example:
        >>> value = soft_target_loss(tf.constant([[2.0, 0.0]]), tf.constant([[1.0, 0.5]]), 4.0)
    """
    kl = softened_kl(teacher, student, temperature, standardize=standardize)
    return tf.reduce_mean(kl) * (temperature * temperature)


def pearson_correlation(a, b, axis=-1, epsilon=PEARSON_EPSILON):
    """Pearson correlation of ``a`` and ``b`` along ``axis``: ``cov / sqrt(ss_a * ss_b + eps**2)``.

    ``ss_a`` and ``ss_b`` are the sums of squared deviations from the mean. A constant vector (sum
    of squares 0) correlates 0 with anything, with a finite gradient.

    Args:
        a: A float tensor.
        b: A float tensor of the same shape.
        axis: The axis to correlate along; it is reduced away.
        epsilon: Regularizer of the denominator, > 0.

    Returns:
        A tensor of the correlations, in ``[-1, 1]`` up to rounding.
    """
    a = a - tf.reduce_mean(a, axis=axis, keepdims=True)
    b = b - tf.reduce_mean(b, axis=axis, keepdims=True)
    covariance = tf.reduce_sum(a * b, axis=axis)
    squares = tf.reduce_sum(tf.square(a), axis=axis) * tf.reduce_sum(tf.square(b), axis=axis)
    return covariance / tf.sqrt(squares + epsilon * epsilon)


def log_mean_probabilities(logits, temperature=1.0, weights=None):
    """``log(sum_i w_i * softmax(logits_i / T))``: the log of several models' mean prediction.

    The mean is taken in log space (a log-sum-exp of log-softmax values), so it stays finite for
    logits of magnitude 1e4. Its softmax is the mean itself: the result is a valid logits tensor.

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network" (the soft
    targets of an ensemble).

    Args:
        logits: A non-empty list of logit tensors of one shape ``(..., classes)``, one per model.
        temperature: Softening temperature ``T`` > 0 applied to every model's logits.
        weights: One weight >= 0 per model, normalized to sum to 1; models of weight 0 are left
            out. ``None`` weighs the models equally.

    Returns:
        A tensor of the shape of one entry of ``logits``: log-probabilities.

    Example:
        >>> log_mean_probabilities([tf.constant([[2.0, 0.0]]), tf.constant([[0.0, 2.0]])])
        <tf.Tensor: ... numpy=array([[-0.6931472, -0.6931472]], dtype=float32)>
    """
    logits = list(logits)
    weights = [1.0] * len(logits) if weights is None else list(weights)
    total = float(sum(weights))
    log_terms = [
        math.log(weight / total) + tf.nn.log_softmax(z / temperature, axis=-1)
        for z, weight in zip(logits, weights)
        if weight > 0
    ]
    return tf.reduce_logsumexp(tf.stack(log_terms, axis=0), axis=0)


def ensemble_logits(logits, temperature=1.0, weights=None):
    """Logits of several models' averaged softened prediction: one tensor that stands for them all.

    ``softmax(result / T)`` equals the weighted mean of ``softmax(logits_i / T)``, so a loss that
    softens at ``T`` sees exactly the ensemble's soft targets. One model's logits come back
    unchanged.

    Paper: Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".

    Args:
        logits: A non-empty list of logit tensors of one shape ``(..., classes)``, one per model.
        temperature: Softening temperature ``T`` > 0 at which the predictions are averaged.
        weights: As in ``log_mean_probabilities``.

    Returns:
        A logits tensor of the shape of one entry of ``logits``.

    Example:
        >>> ensemble = ensemble_logits([teacher_a_logits, teacher_b_logits], temperature=4.0)
    """
    logits = list(logits)
    if len(logits) == 1:
        return logits[0]
    return log_mean_probabilities(logits, temperature, weights) * temperature
