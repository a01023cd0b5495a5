"""Shared math of the logit losses: z-scored logits, the softened KL divergence, Pearson correlation.

Every function works in the dtype it is given (the losses cast to float32 first) and reduces over
the last axis unless told otherwise. Each is written so that its value and gradient stay finite for
finite inputs, including constant rows and logits of magnitude 1e4.
"""

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
