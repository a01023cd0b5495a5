"""Per-example, stateless versions of Keras's random image layers, keyed by one integer per view.

Each op draws its random parameters from a counter-based hash of the view's key and a slot number
(no random state, no dependence on the batch an example sits in), so a view is recreated exactly from
its key. The geometric ops use the same projective-transform kernel and matrices as Keras's layers;
their parameters follow the same distributions, drawn per example (Keras's ``RandomCrop`` and
``RandomContrast`` draw one value per batch).
"""

import math

from keras_kd._compat import keras, tf

_GOLDEN = 0x9E3779B9
_PARTNER_SALT = 0x68E31DA4


def _mix32(x):
    """The lowbias32 integer hash (Wellons 2018): a bijection of uint32 with strong avalanche."""
    xor, shift = tf.bitwise.bitwise_xor, tf.bitwise.right_shift
    x = xor(x, shift(x, tf.constant(16, tf.uint32))) * tf.constant(0x7FEB352D, tf.uint32)
    x = xor(x, shift(x, tf.constant(15, tf.uint32))) * tf.constant(0x846CA68B, tf.uint32)
    return xor(x, shift(x, tf.constant(16, tf.uint32)))


def view_keys(seed, rows):
    """One uint32 key per view: every random parameter of the view is hashed from it.

    Paper: Shen & Xing (2022), "A Fast Knowledge Distillation Framework for Visual Recognition"
    (a view is recreated from its stored record rather than stored as an image).

    Args:
        seed: Integer replay seed.
        rows: Integer tensor of view rows, ``example * views + view``.

    Returns:
        A uint32 tensor of the shape of ``rows``; the same seed and row give the same key.

    Example:
        >>> keys = view_keys(0, tf.range(4))
        >>> views = keras_kd.data.view_plan(augment).render(x[:4], keys)
    """
    rows = tf.cast(rows, tf.uint32)
    base = tf.constant((int(seed) * _GOLDEN) & 0xFFFFFFFF, tf.uint32)
    return _mix32(tf.bitwise.bitwise_xor(_mix32(rows), base))


def partner_keys(keys):
    """Keys for the augmentation of a mixing partner, independent of the view's own."""
    return _mix32(tf.bitwise.bitwise_xor(keys, tf.constant(_PARTNER_SALT, tf.uint32)))


def uniform(keys, slot, low=0.0, high=1.0):
    """One float32 draw per key, uniform in ``[low, high)``, independent for each ``slot``."""
    bits = _mix32(keys + tf.constant((slot * _GOLDEN) & 0xFFFFFFFF, tf.uint32))
    unit = tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), tf.float32) * 2.0**-24
    return low + unit * (high - low)


def _transform(images, matrices, layer):
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        output_shape=tf.shape(images)[1:3],
        fill_value=tf.constant(layer.fill_value, tf.float32),
        transforms=matrices,
        fill_mode=layer.fill_mode.upper(),
        interpolation=layer.interpolation.upper(),
    )


def _size(images):
    shape = tf.shape(images)
    return tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)


def flip(layer, images, keys, slot):
    """``RandomFlip``: each axis of the mode flipped with probability 1/2."""
    for axis, active in ((2, layer.horizontal), (1, layer.vertical)):
        if active:
            flipped = uniform(keys, slot + axis) < 0.5
            images = tf.where(flipped[:, None, None, None], tf.reverse(images, [axis]), images)
    return images


def crop(layer, images, keys, slot):
    """``RandomCrop``: a window at a uniform position (Keras's resize when the image is smaller)."""
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None or height < layer.height or width < layer.width:
        resized = keras.preprocessing.image.smart_resize(images, [layer.height, layer.width])
        return tf.cast(resized, tf.float32)
    starts = []
    for offset, (size, target) in enumerate(((height, layer.height), (width, layer.width))):
        position = tf.floor(uniform(keys, slot + offset) * (size - target + 1))
        starts.append(tf.minimum(tf.cast(position, tf.int32), size - target))
    rows = starts[0][:, None] + tf.range(layer.height)[None, :]
    cols = starts[1][:, None] + tf.range(layer.width)[None, :]
    images = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def translation(layer, images, keys, slot):
    """``RandomTranslation``: shifts uniform in the factors' ranges, as Keras's matrix."""
    height, width = _size(images)
    dy = uniform(keys, slot, layer.height_lower, layer.height_upper) * height
    dx = uniform(keys, slot + 1, layer.width_lower, layer.width_upper) * width
    ones, zeros = tf.ones_like(dx), tf.zeros_like(dx)
    matrices = tf.stack([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros], axis=1)
    return _transform(images, matrices, layer)


def rotation(layer, images, keys, slot):
    """``RandomRotation``: an angle uniform in ``factor * 2 pi``, about the image centre."""
    # float64: vectorized and scalar sin/cos may differ in the last float32 bit, and a view must
    # not depend on its position in the batch.
    height, width = (tf.cast(size, tf.float64) for size in _size(images))
    angle = uniform(keys, slot, layer.lower * 2.0 * math.pi, layer.upper * 2.0 * math.pi)
    angle = tf.cast(angle, tf.float64)
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    zeros = tf.zeros_like(angle)
    matrices = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zeros, zeros], axis=1)
    return _transform(images, tf.cast(matrices, tf.float32), layer)


def zoom(layer, images, keys, slot):
    """``RandomZoom``: zoom factors ``1 + factor`` per axis (the height's for both when no width)."""
    height, width = _size(images)
    zoom_y = uniform(keys, slot, 1.0 + layer.height_lower, 1.0 + layer.height_upper)
    zoom_x = zoom_y
    if layer.width_factor is not None:
        zoom_x = uniform(keys, slot + 1, 1.0 + layer.width_lower, 1.0 + layer.width_upper)
    x_offset = ((width - 1.0) / 2.0) * (1.0 - zoom_x)
    y_offset = ((height - 1.0) / 2.0) * (1.0 - zoom_y)
    zeros = tf.zeros_like(zoom_x)
    matrices = tf.stack([zoom_x, zeros, x_offset, zeros, zoom_y, y_offset, zeros, zeros], axis=1)
    return _transform(images, matrices, layer)


def contrast(layer, images, keys, slot):
    """``RandomContrast``: ``(x - mean) * f + mean`` per channel, f uniform, clipped to [0, 255]."""
    factor = uniform(keys, slot, 1.0 - layer.lower, 1.0 + layer.upper)[:, None, None, None]
    # A float64 mean: the float32 sum's rounding could depend on how the batch is vectorized.
    mean = tf.cast(
        tf.reduce_mean(tf.cast(images, tf.float64), axis=[1, 2], keepdims=True), tf.float32
    )
    return tf.clip_by_value((images - mean) * factor + mean, 0.0, 255.0)


def mixup(layer, images, partners, coefficients, keys, slot):
    """``keras_kd.data.MixUp``: ``c * image + (1 - c) * partner`` with the stored coefficient."""
    del layer, keys, slot
    weights = tf.reshape(coefficients, [-1] + [1] * (images.shape.rank - 1))
    return weights * images + (1 - weights) * partners


def cutmix(layer, images, partners, coefficients, keys, slot):
    """``keras_kd.data.CutMix``: the partner's box of ``1 - c`` of the area at a uniform position."""
    del layer
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    side = tf.sqrt(1.0 - coefficients)
    box_h = tf.cast(tf.round(side * tf.cast(height, tf.float32)), tf.int32)
    box_w = tf.cast(tf.round(side * tf.cast(width, tf.float32)), tf.int32)
    top = tf.cast(tf.floor(uniform(keys, slot) * tf.cast(height - box_h + 1, tf.float32)), tf.int32)
    left = tf.cast(
        tf.floor(uniform(keys, slot + 1) * tf.cast(width - box_w + 1, tf.float32)), tf.int32
    )
    top, left = tf.minimum(top, height - box_h), tf.minimum(left, width - box_w)
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
    inside = (in_rows[:, :, None] & in_cols[:, None, :])[..., None]
    return tf.where(inside, partners, images)
