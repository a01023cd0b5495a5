"""Batch mixing layers for consistent teaching ("function matching").

The Distiller applies its ``augment`` layer once per batch and feeds the result to both teacher and
student, so the two always see the same mixed inputs.

Paper: Beyer, Zhai, Royer, Markeeva, Anil & Kolesnikov (2022), "Knowledge distillation: A good
teacher is patient and consistent".
"""

from keras_kd._checks import check_positive
from keras_kd._compat import keras, tf


def _beta(alpha, shape):
    """Samples Beta(alpha, alpha) as a ratio of Gamma samples (TensorFlow has no Beta sampler op)."""
    a = tf.random.gamma(shape, alpha)
    b = tf.random.gamma(shape, alpha)
    return a / (a + b)


class _BetaMixing(keras.layers.Layer):
    """A layer that mixes each example with a partner by a weight drawn from Beta(alpha, alpha).

    Its ``mixes_examples`` tells the Distiller that the labels no longer match the inputs.
    """

    mixes_examples = True

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = check_positive("alpha", alpha, "the Beta distribution's parameter")

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


def mix(x, weights, permutation):
    """Returns ``weights * x + (1 - weights) * x[permutation]`` with one weight per example.

    Args:
        x: A batch, shape ``(batch, ...)``.
        weights: Mixing weights in [0, 1], shape ``(batch,)``.
        permutation: Partner of each example, integer shape ``(batch,)``.

    Returns:
        The mixed batch, same shape and dtype as ``x``.

    Raises:
        ValueError: If ``weights`` or ``permutation`` is not one value per example of ``x``.

    Example:
        >>> mixed = mix(x, tf.fill([4], 0.7), tf.constant([1, 0, 3, 2]))
    """
    batch = tf.TensorShape(x.shape)[:1]
    for name, value in (("weights", weights), ("permutation", permutation)):
        shape = tf.TensorShape(getattr(value, "shape", None))
        if shape.rank is not None and not (shape.rank == 1 and shape.is_compatible_with(batch)):
            raise ValueError(
                f"{name} must hold one value per example of x, shape {tuple(batch)}, "
                f"received: {name}=<array of shape {tuple(shape)}>"
            )
    weights = tf.reshape(tf.cast(weights, x.dtype), [-1] + [1] * (x.shape.rank - 1))
    return weights * x + (1 - weights) * tf.gather(x, permutation)


@keras.utils.register_keras_serializable(package="keras_kd")
class MixUp(_BetaMixing):
    """Mixes each example with a random partner from the batch, with a Beta(alpha, alpha) weight.

    Active only in training. Labels are not mixed, so a Distiller using it must have ``alpha=0``
    (the student learns the teacher's function on the mixed inputs).

    Paper: Zhang, Cisse, Dauphin & Lopez-Paz (2018), "mixup: Beyond Empirical Risk Minimization";
    used for distillation by Beyer et al. (2022).

    Args:
        alpha: Beta distribution parameter > 0; 1.0 mixes uniformly.
        **kwargs: Passed to ``keras.layers.Layer``.

    Raises:
        ValueError: If ``alpha`` is not a number > 0.

    Example:
        >>> distiller = Distiller(student, teacher, alpha=0.0, augment=MixUp(1.0))
    """

    def call(self, inputs, training=None):
        if not training:
            return inputs
        batch = tf.shape(inputs)[0]
        return mix(inputs, _beta(self.alpha, [batch]), tf.random.shuffle(tf.range(batch)))


@keras.utils.register_keras_serializable(package="keras_kd")
class CutMix(_BetaMixing):
    """Pastes a random box from a partner image over each image; the box covers ``1 - lambda`` of it.

    Active only in training; inputs are image batches ``(batch, height, width, channels)``. As with
    ``MixUp``, labels are not mixed, so use it with a Distiller whose ``alpha=0``.

    Paper: Yun, Han, Oh, Chun, Choe & Yoo (2019), "CutMix: Regularization Strategy to Train Strong
    Classifiers with Localizable Features"; used for distillation by Beyer et al. (2022).

    Args:
        alpha: Beta distribution parameter > 0 for ``lambda``.
        **kwargs: Passed to ``keras.layers.Layer``.

    Raises:
        ValueError: If ``alpha`` is not a number > 0, or the inputs are not rank 4.

    Example:
        >>> distiller = Distiller(student, teacher, alpha=0.0, augment=CutMix(1.0))
    """

    def call(self, inputs, training=None):
        if inputs.shape.rank != 4:
            raise ValueError(f"CutMix needs image batches of rank 4, received shape {inputs.shape}")
        if not training:
            return inputs
        shape = tf.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]
        side = tf.sqrt(1.0 - _beta(self.alpha, []))
        box_h = tf.cast(tf.round(side * tf.cast(height, tf.float32)), tf.int32)
        box_w = tf.cast(tf.round(side * tf.cast(width, tf.float32)), tf.int32)
        top = tf.random.uniform([], 0, height - box_h + 1, dtype=tf.int32)
        left = tf.random.uniform([], 0, width - box_w + 1, dtype=tf.int32)
        rows = tf.logical_and(tf.range(height) >= top, tf.range(height) < top + box_h)
        cols = tf.logical_and(tf.range(width) >= left, tf.range(width) < left + box_w)
        inside = tf.logical_and(rows[:, None], cols[None, :])[None, :, :, None]
        partners = tf.gather(inputs, tf.random.shuffle(tf.range(batch)))
        return tf.where(inside, partners, inputs)
