"""Shared machinery of the feature losses in ``keras_kd.losses.feature``.

Shape checks and weight creation happen once per loss layer: before training when the Distiller
calls ``prepare`` (graph models), or at the first call (subclassed models with
``call_with_features``). The prepared shapes are saved as the layer's build config, so a loaded
loss recreates its adapters before its weights are restored. The tensor ops the losses share live
here too; ``attention_map`` and ``fsp_matrix`` are public through ``keras_kd.losses.feature``.
"""

import math
import numbers

from keras_kd._compat import keras, tf
from keras_kd.losses.base import DistillationLoss, as_float32

EPSILON = 1e-12  # added inside L2 normalizations, on the sum of squares


class FeatureLoss(DistillationLoss):
    """Base of the feature losses: one shape check and one weight creation, then ``compute``.

    Subclasses implement ``check_shapes(teacher_shapes, student_shapes)`` (raise ``ValueError``
    naming layers and shapes, e.g. with ``describe``), optionally ``create_weights`` with the same
    arguments, and ``compute(teacher, student)`` on lists of float32 tensors. The teacher features
    pass through ``tf.stop_gradient``: gradients reach the student and the loss's own weights only.

    Args:
        pairs: ``[(teacher_layer_name, student_layer_name), ...]``.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).
    """

    def __init__(self, pairs, **kwargs):
        if pairs is None:
            raise ValueError(
                "pairs must be a list of (teacher_layer_name, student_layer_name) tuples for a "
                "feature loss, received: pairs=None"
            )
        super().__init__(pairs=pairs, **kwargs)
        self._prepared = None

    def prepare(self, teacher_shapes, student_shapes):
        """Checks the feature shapes and creates the loss's weights; a no-op when already prepared.

        Args:
            teacher_shapes: Static shapes (with the batch axis) of the teacher features, one per
                pair in the order of ``pairs``.
            student_shapes: Static shapes of the student features, in the same order.

        Raises:
            ValueError: If there is not one shape per pair, a shape does not suit the loss, or the
                loss was already prepared for other shapes.
        """
        t_shapes = [tf.TensorShape(s) for s in teacher_shapes]
        s_shapes = [tf.TensorShape(s) for s in student_shapes]
        if len(t_shapes) != len(self.pairs) or len(s_shapes) != len(self.pairs):
            raise ValueError(
                f"{self.name}: expected one teacher and one student feature per pair of "
                f"{self.pairs}, received {len(t_shapes)} teacher and {len(s_shapes)} student "
                "features"
            )
        if self._prepared is not None:
            old_t, old_s = self._prepared
            if all(_same_example_shape(a, b) for a, b in zip(old_t + old_s, t_shapes + s_shapes)):
                return
            raise ValueError(
                f"{self.name} was prepared for teacher shapes {old_t} and student shapes {old_s} "
                f"but received teacher shapes {t_shapes} and student shapes {s_shapes}; a loss "
                "layer owns weights for one pair of models, so make a new one for other models"
            )
        for index, (t_shape, s_shape) in enumerate(zip(t_shapes, s_shapes)):
            if t_shape.rank is None or s_shape.rank is None:
                pair = self.describe(index, t_shape, s_shape)
                raise ValueError(f"{self.name}: {pair}; ranks must be known")
        self.check_shapes(t_shapes, s_shapes)
        with tf.init_scope():  # weights made at a first call inside tf.function are made eagerly
            self.create_weights(t_shapes, s_shapes)
        self._prepared = (t_shapes, s_shapes)

    def check_shapes(self, teacher_shapes, student_shapes):
        raise NotImplementedError

    def create_weights(self, teacher_shapes, student_shapes):
        del teacher_shapes, student_shapes  # most feature losses own no weights

    def compute(self, teacher, student):
        raise NotImplementedError

    def call(self, teacher, student):
        teacher = [tf.stop_gradient(as_float32(t)) for t in _as_list(teacher)]
        student = [as_float32(s) for s in _as_list(student)]
        self.prepare([t.shape for t in teacher], [s.shape for s in student])
        return self.compute(teacher, student)

    def describe(self, index, teacher_shape, student_shape):
        """Names the layers and shapes of pair ``index`` for error messages."""
        teacher_layer, student_layer = self.pairs[index]
        return (
            f"teacher layer {teacher_layer!r} has shape {teacher_shape} and student layer "
            f"{student_layer!r} has shape {student_shape}"
        )

    def check_ranks(self, index, teacher_shape, student_shape, ranks, what):
        """Raises ``ValueError`` unless both ranks are equal and one of ``ranks`` (``what``)."""
        if teacher_shape.rank != student_shape.rank or teacher_shape.rank not in ranks:
            raise ValueError(
                f"{self.name}: {self.describe(index, teacher_shape, student_shape)}; both features "
                f"must have the same rank, one of {list(ranks)} ({what})"
            )

    def get_build_config(self):
        if self._prepared is None:
            return None
        t_shapes, s_shapes = self._prepared
        return {
            "teacher_shapes": [s.as_list() for s in t_shapes],
            "student_shapes": [s.as_list() for s in s_shapes],
        }

    def build_from_config(self, config):
        if config.get("teacher_shapes") is not None:
            self.prepare(config["teacher_shapes"], config["student_shapes"])


def _as_list(features):
    return list(features) if isinstance(features, (list, tuple)) else [features]


def _same_example_shape(a, b):
    return a.rank == b.rank and a[1:].is_compatible_with(b[1:])


def spatial_dims(shape):
    """The spatial sizes of a ``(batch, *spatial, channels)`` shape, a list (``None``: unknown)."""
    return tf.TensorShape(shape)[1:-1].as_list()


def same_spatial(a, b):
    """Whether two feature shapes have the same spatial sizes; unknown sizes count as compatible."""
    return tf.TensorShape(a)[1:-1].is_compatible_with(tf.TensorShape(b)[1:-1])


def divide_by_max_abs(x, axis):
    """``x / max(|x|)`` over ``axis``, the maximum held constant (1 where it is 0).

    Only for maps that are invariant to a positive scale of ``x``: the value, and the gradient, are
    those of ``x`` itself, while powers and squares of the scaled ``x`` stay finite for any
    magnitude.
    """
    scale = tf.stop_gradient(tf.reduce_max(tf.abs(x), axis=axis, keepdims=True))
    return x / tf.where(scale > 0, scale, tf.ones_like(scale))


def resize_spatial(x, size):
    """Resizes ``(batch, H, W, C)`` or ``(batch, L, C)`` to the spatial ``size``.

    Shrinking by whole factors (8x8 to 4x4, 32 to 8) averages each block (``tf.nn.avg_pool``); any
    other size is bilinear interpolation (``tf.image.resize(..., "bilinear")``; a sequence as an
    ``L x 1`` image). Both compile under XLA.

    Args:
        x: The features to resize.
        size: The target spatial sizes: a list of ints, or a 1-D int tensor when not static.
    """
    source = spatial_dims(x.shape)
    if isinstance(size, (list, tuple)) and None not in source and None not in size:
        if all(s % t == 0 for s, t in zip(source, size)):
            factors = [s // t for s, t in zip(source, size)]
            return tf.nn.avg_pool(x, ksize=factors, strides=factors, padding="VALID")
    if x.shape.rank == 3:
        return tf.image.resize(x[:, :, tf.newaxis, :], [size[0], 1], method="bilinear")[:, :, 0, :]
    return tf.image.resize(x, size, method="bilinear")


def flatten_positions(x):
    """Reshapes ``(batch, *spatial, C)`` to ``(batch, positions, C)``."""
    channels = x.shape[-1] if x.shape[-1] is not None else tf.shape(x)[-1]
    return tf.reshape(x, [tf.shape(x)[0], -1, channels])


def attention_map(feature, p=2.0):
    """The spatial attention map of a feature: the mean over channels of ``|feature|**p``.

    The feature is first divided by its largest absolute value per example, which changes the map
    by a positive factor only (irrelevant once it is L2-normalized, as ``AttentionTransfer`` does)
    and keeps ``|feature|**p`` finite for large activations.

    Paper: Zagoruyko & Komodakis (2017), "Paying More Attention to Attention: Improving the
    Performance of Convolutional Neural Networks via Attention Transfer".

    Args:
        feature: A ``(batch, H, W, C)`` or ``(batch, L, C)`` tensor.
        p: The exponent, >= 1. The paper uses 2.

    Returns:
        A float32 tensor ``(batch, H, W)`` or ``(batch, L)``, proportional per example to
        ``mean_c |feature[..., c]|**p``.

    Example:
        >>> attention_map(tf.ones((2, 4, 4, 8))).shape
        TensorShape([2, 4, 4])
    """
    feature = as_float32(feature)
    scaled = divide_by_max_abs(feature, axis=list(range(1, feature.shape.rank)))
    return tf.reduce_mean(tf.pow(tf.abs(scaled), p), axis=-1)


def fsp_matrix(first, second):
    """The flow of solution procedure (FSP) matrix between two features of one network.

    ``G[c_a, c_b] = sum over positions of first[.., c_a] * second[.., c_b] / positions``: the
    Gram matrix across the two layers' channels, averaged over the spatial positions.

    Paper: Yim, Joo, Bae & Kim (2017), "A Gift from Knowledge Distillation: Fast Optimization,
    Network Minimization and Transfer Learning".

    Args:
        first: Features ``(batch, H, W, C_a)`` or ``(batch, L, C_a)`` of the earlier layer.
        second: Features of the later layer with the same rank and spatial sizes, ``C_b`` channels.

    Returns:
        A float32 tensor ``(batch, C_a, C_b)``.

    Raises:
        ValueError: If the ranks differ or are not 3 or 4, or the spatial sizes differ.

    Example:
        >>> fsp_matrix(tf.ones((2, 4, 4, 16)), tf.ones((2, 4, 4, 32))).shape
        TensorShape([2, 16, 32])
    """
    first, second = as_float32(first), as_float32(second)
    if first.shape.rank != second.shape.rank or first.shape.rank not in (3, 4):
        raise ValueError(
            f"fsp_matrix needs two features of rank 3 or 4 with the same rank, received shapes "
            f"{first.shape} and {second.shape}"
        )
    if not same_spatial(first.shape, second.shape):
        raise ValueError(
            "fsp_matrix needs features of the same spatial sizes, received shapes "
            f"{first.shape} and {second.shape}"
        )
    a, b = flatten_positions(first), flatten_positions(second)
    positions = tf.cast(tf.shape(a)[1], tf.float32)
    return tf.matmul(a, b, transpose_a=True) / positions


def make_adapter(rank, channels, name):
    if rank == 4:
        return keras.layers.Conv2D(channels, 1, name=name, dtype="float32")
    if rank == 3:
        return keras.layers.Conv1D(channels, 1, name=name, dtype="float32")
    return keras.layers.Dense(channels, name=name, dtype="float32")


def validate_flows(flows):
    message = (
        "flows must be a non-empty list of ((teacher_a, teacher_b), (student_a, student_b)) layer "
        f"names, received: flows={flows!r}"
    )
    if isinstance(flows, (str, bytes)) or not isinstance(flows, (list, tuple)) or not flows:
        raise ValueError(message)
    result = []
    for flow in flows:
        sides = flow if isinstance(flow, (list, tuple)) and len(flow) == 2 else ((),)
        if not all(isinstance(side, (list, tuple)) and len(side) == 2 for side in sides):
            raise ValueError(message)
        (ta, tb), (sa, sb) = sides
        if not all(isinstance(n, str) for n in (ta, tb, sa, sb)):
            raise ValueError(message)
        result.append(((ta, tb), (sa, sb)))
    return result


def channel_samples(feature):
    """``(batch, *spatial, C)`` -> ``(batch, C, positions)``, each channel's map of unit L2 norm."""
    samples = tf.transpose(flatten_positions(feature), [0, 2, 1])
    return tf.math.l2_normalize(divide_by_max_abs(samples, axis=-1), -1, EPSILON)


def static_equal(a, b):
    return None not in a and None not in b and a == b


def validate_number(name, value, minimum):
    """Returns ``float(value)``, or raises ``ValueError`` unless it is a finite real >= minimum."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (real and math.isfinite(value) and value >= minimum):
        raise ValueError(
            f"{name} must be a finite number >= {minimum:g}, received: {name}={value!r}"
        )
    return float(value)
