"""Relational distillation losses: the student copies relations among the examples of a batch.

Each loss compares batch x batch (or batch^3) matrices computed separately on the teacher's and the
student's outputs, so the two may differ in width. They are feature losses (``FeatureLoss``): with
``pairs=[(teacher_layer, student_layer), ...]`` on those layers' outputs, each flattened to
``(batch, -1)``, and the loss is the mean over the pairs; with ``pairs=None`` on the two models'
logits, as one pair (one teacher only). The teacher side gets no gradient. Under a
``tf.distribute`` strategy each replica relates the examples of its own share of the batch.
"""

import math

from keras_kd._checks import check_positive, check_positive_int, check_weights
from keras_kd._compat import keras, tf
from keras_kd.losses._feature_base import FeatureLoss, mean_over_pairs


class _RelationalLoss(FeatureLoss):
    """Shared plumbing: flattening and batch checks; subclasses define ``_relation``."""

    logits_without_pairs = True

    def call(self, teacher, student):
        names = self.pairs or [("teacher logits", "student logits")]
        return mean_over_pairs(self._term, names, teacher, student)

    def _term(self, names, t_feature, s_feature):
        t_batch, s_batch = t_feature.shape[:1].as_list(), s_feature.shape[:1].as_list()
        if None not in t_batch + s_batch and t_batch != s_batch:
            raise ValueError(
                f"{self.name}: {names[0]} has shape {t_feature.shape} but {names[1]} has shape "
                f"{s_feature.shape}; both need the same batch size"
            )
        return self._relation(_flatten(t_feature), _flatten(s_feature))


@keras.utils.register_keras_serializable(package="keras_kd")
class RKD(_RelationalLoss):
    """Relational knowledge distillation: distances and angles among the batch's embeddings.

    - Distance term: every pairwise Euclidean distance, divided by the mean non-zero distance of its
      own model, compared with the Huber (smooth L1, delta 1) loss, averaged over the b*b pairs.
    - Angle term: the cosine of the angle at ``e_j`` in every triplet ``(e_i, e_j, e_k)``, compared
      with the Huber loss, averaged over the b^3 triplets (as in the authors' code, triplets with a
      repeated index count too; they have the same value on both sides and add 0).

        loss = distance_weight * distance_term + angle_weight * angle_term

    Both terms are invariant to translating either embedding and to scaling it by any positive
    factor, so teacher and student need neither the same width nor the same scale. A batch of one
    example has no relations: the loss is 0. The angle term holds a (batch, batch, width) tensor, so
    apply RKD to embeddings (pooled or dense features), not to large feature maps.

    Paper: Park, Kim, Lu & Cho (2019), "Relational Knowledge Distillation".

    Args:
        distance_weight: Weight of the distance term, >= 0 (25 in the paper).
        angle_weight: Weight of the angle term, >= 0 (50 in the paper). Not both 0.
        pairs: ``None`` for the logits, or ``(teacher_layer, student_layer)`` name pairs.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer returns a scalar float32 tensor.

    Raises:
        ValueError: If a weight is negative or not finite or both are 0, if ``pairs`` is malformed,
            or if teacher and student batch sizes differ.

    Example:
        >>> loss = RKD(pairs=[("t_dense", "s_global_pool")])
        >>> value = loss([tf.random.normal((8, 128))], [tf.random.normal((8, 16))])
    """

    def __init__(self, distance_weight=25.0, angle_weight=50.0, pairs=None, **kwargs):
        kwargs.setdefault("name", "rkd")
        super().__init__(pairs=pairs, **kwargs)
        self.distance_weight, self.angle_weight = check_weights(
            distance_weight=distance_weight, angle_weight=angle_weight
        )

    def _relation(self, teacher, student):
        t_diff, s_diff = _differences(teacher), _differences(student)
        loss = tf.constant(0.0)
        if self.distance_weight > 0:
            distance = _huber(_normalized_distances(s_diff), _normalized_distances(t_diff))
            loss += self.distance_weight * distance
        if self.angle_weight > 0:
            loss += self.angle_weight * _huber(_angles(s_diff), _angles(t_diff))
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "distance_weight": self.distance_weight,
            "angle_weight": self.angle_weight,
        }


@keras.utils.register_keras_serializable(package="keras_kd")
class SimilarityPreserving(_RelationalLoss):
    """Similarity-preserving distillation: the student copies the batch's similarity matrix.

    For the flattened features ``Q`` (batch x width), ``G = Q Q^T`` with each row of ``G``
    L2-normalized, and

        loss = ||G_teacher - G_student||_F^2 / b^2

    Invariant to scaling either ``Q`` by a positive factor, to any rotation (orthogonal map) of
    either feature space and to a common permutation of the batch; not invariant to translation or
    to per-example scaling (the rows of ``G`` are normalized, not those of ``Q``). Since the rows of
    ``G`` have unit norm the loss shrinks like 1/b with the batch size (a batch repeated twice
    gives half the loss). A batch of one example gives 0 (each ``G`` is ``[[1]]``), or 1 if one
    side's feature vector is all zeros. The paper weighs this loss by 3000
    (``Distiller(loss_weights=...)``).

    Paper: Tung & Mori (2019), "Similarity-Preserving Knowledge Distillation".

    Args:
        pairs: ``None`` for the logits, or ``(teacher_layer, student_layer)`` name pairs.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer returns a scalar float32 tensor.

    Raises:
        ValueError: If ``pairs`` is malformed or teacher and student batch sizes differ.

    Example:
        >>> loss = SimilarityPreserving(pairs=[("t_dense", "s_global_pool")])
        >>> value = loss([tf.random.normal((8, 128))], [tf.random.normal((8, 16))])
    """

    def __init__(self, pairs=None, **kwargs):
        kwargs.setdefault("name", "similarity_preserving")
        super().__init__(pairs=pairs, **kwargs)

    def _relation(self, teacher, student):
        b = tf.cast(tf.shape(teacher)[0], tf.float32)
        return tf.reduce_sum(tf.square(_similarity(teacher) - _similarity(student))) / (b * b)


@keras.utils.register_keras_serializable(package="keras_kd")
class PKT(_RelationalLoss):
    """Probabilistic knowledge transfer: matching conditional distributions of cosine similarity.

    Each example's feature vector is L2-normalized, the cosine similarity ``c_ij`` of every pair is
    mapped to ``k_ij = (c_ij + 1) / 2`` in [0, 1], each row is turned into a conditional
    distribution ``p_j|i = k_ij / sum_j k_ij``, and

        loss = mean over i of KL(p_teacher(.|i) || p_student(.|i))

    computed as ``sum_j p log((p + eps) / (q + eps))`` as in the authors' code. (That code averages
    over the b*b entries, i.e. it is this loss divided by b, so a weight tuned for it, such as
    RepDistiller's 30000, corresponds to 30000 / batch_size here; here the loss is a batch mean and
    a batch repeated twice gives the same value.) Invariant to scaling each example's feature vector
    by its own positive factor and to rotations of either feature space; not to translation. A batch
    of one example gives 0.

    Paper: Passalis & Tefas (2018), "Learning Deep Representations with Probabilistic Knowledge
    Transfer".

    Args:
        eps: Small constant > 0 added to the vector norms and to both probabilities inside the log.
        pairs: ``None`` for the logits, or ``(teacher_layer, student_layer)`` name pairs.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer returns a scalar float32 tensor.

    Raises:
        ValueError: If ``eps`` is not a finite number > 0, ``pairs`` is malformed, or teacher and
            student batch sizes differ.

    Example:
        >>> loss = PKT(pairs=[("t_dense", "s_global_pool")])
        >>> value = loss([tf.random.normal((8, 128))], [tf.random.normal((8, 16))])
    """

    def __init__(self, eps=1e-7, pairs=None, **kwargs):
        kwargs.setdefault("name", "pkt")
        super().__init__(pairs=pairs, **kwargs)
        self.eps = check_positive("eps", eps)

    def _conditional(self, features):
        norm = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(features), axis=1, keepdims=True), 1e-30))
        unit = features / (norm + self.eps)
        kernel = (tf.matmul(unit, unit, transpose_b=True) + 1.0) / 2.0
        return kernel / tf.reduce_sum(kernel, axis=1, keepdims=True)

    def _relation(self, teacher, student):
        p, q = self._conditional(teacher), self._conditional(student)
        kl = tf.reduce_sum(p * tf.math.log((p + self.eps) / (q + self.eps)), axis=1)
        return tf.reduce_mean(kl)

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}


@keras.utils.register_keras_serializable(package="keras_kd")
class CorrelationCongruence(_RelationalLoss):
    """Correlation congruence: the student copies the batch's Gaussian-kernel correlation matrix.

    Each example's feature vector is L2-normalized, so ``||x - y||^2 = 2 - 2 x.y`` and the Gaussian
    RBF kernel ``exp(-gamma ||x - y||^2)`` equals ``exp(-2 gamma) exp(2 gamma x.y)``, which is
    approximated by its Taylor series up to power ``order``:

        C_ij = exp(-2 gamma) * sum_{p=0..order} (2 gamma)^p / p! * (x_i . x_j)^p
        loss = ||C_teacher - C_student||_F^2 / b^2

    Invariant to scaling each example's feature vector by its own positive factor and to rotations
    of either feature space; not to translation. The loss is a mean over the b*b entries, so a
    batch repeated twice gives the same value. A batch of one example gives 0.

    Paper: Peng, Jin, Liu, Li, Wu, Liu, Zhou & Zhang (2019), "Correlation Congruence for Knowledge
    Distillation".

    Args:
        gamma: Kernel width ``gamma`` > 0 (0.4 in the paper).
        order: Highest power of the Taylor series, an integer >= 1 (2 in the paper).
        pairs: ``None`` for the logits, or ``(teacher_layer, student_layer)`` name pairs.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer returns a scalar float32 tensor.

    Raises:
        ValueError: If ``gamma`` is not a finite number > 0, ``order`` is not an integer >= 1,
            ``pairs`` is malformed, or teacher and student batch sizes differ.

    Example:
        >>> loss = CorrelationCongruence(gamma=0.4, order=2, pairs=[("t_dense", "s_global_pool")])
        >>> value = loss([tf.random.normal((8, 128))], [tf.random.normal((8, 16))])
    """

    def __init__(self, gamma=0.4, order=2, pairs=None, **kwargs):
        kwargs.setdefault("name", "correlation_congruence")
        super().__init__(pairs=pairs, **kwargs)
        self.gamma = check_positive("gamma", gamma)
        self.order = check_positive_int("order", order)

    def _correlation(self, features):
        unit = tf.math.l2_normalize(features, axis=1, epsilon=1e-24)
        cosine = tf.matmul(unit, unit, transpose_b=True)
        total, power, coefficient = tf.ones_like(cosine), tf.ones_like(cosine), 1.0
        for p in range(1, self.order + 1):
            power *= cosine
            coefficient *= 2.0 * self.gamma / p
            total += coefficient * power
        return math.exp(-2.0 * self.gamma) * total

    def _relation(self, teacher, student):
        b = tf.cast(tf.shape(teacher)[0], tf.float32)
        diff = self._correlation(teacher) - self._correlation(student)
        return tf.reduce_sum(tf.square(diff)) / (b * b)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "order": self.order}


def _flatten(features):
    return tf.reshape(features, [tf.shape(features)[0], -1])


def _differences(embeddings):
    """``d[i, j] = e_i - e_j``, (batch, batch, width): exact, unlike a Gram-matrix expansion."""
    return embeddings[:, None, :] - embeddings[None, :, :]


def _normalized_distances(diff):
    """Pairwise distances divided by their mean over pairs of distinct examples (Park et al.:
    the mean of the non-zero distances), so duplicated examples change nothing; 0 for one example."""
    squared = tf.reduce_sum(tf.square(diff), axis=-1)
    distinct = tf.cast(squared > 1e-12, diff.dtype) * (
        1.0 - tf.eye(tf.shape(diff)[0], dtype=diff.dtype)
    )
    # The floor keeps the gradient of sqrt finite for duplicated examples, as in the authors' code.
    distances = tf.sqrt(tf.maximum(squared, 1e-12)) * distinct
    mean = tf.reduce_sum(distances) / tf.maximum(tf.reduce_sum(distinct), 1.0)
    return tf.math.divide_no_nan(distances, mean)


def _angles(diff):
    """``a[j, i, k] = cos`` of the angle at ``e_j`` between ``e_i`` and ``e_k``, shape (b, b, b)."""
    unit = tf.math.l2_normalize(diff, axis=-1, epsilon=1e-24)
    return tf.matmul(unit, unit, transpose_b=True)


def _huber(a, b):
    """The mean Huber (smooth L1, delta 1) loss over every entry. ``keras.losses.huber`` averages
    the last axis, whose length is the same for every row."""
    return tf.reduce_mean(keras.losses.huber(a, b, delta=1.0))


def _similarity(features):
    """Row-normalized Gram matrix. The features are first scaled into [-1, 1], which changes nothing
    after the normalization but keeps ``Q Q^T`` far from float32 overflow."""
    scale = tf.stop_gradient(tf.reduce_max(tf.abs(features)))
    features = tf.math.divide_no_nan(features, scale)
    gram = tf.matmul(features, features, transpose_b=True)
    return tf.math.l2_normalize(gram, axis=1, epsilon=1e-24)
