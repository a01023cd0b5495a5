"""``FeatureLoss``, the base class of the losses on tapped features, and the math they share.

Shape checks and weight creation happen once per loss layer, in ``build``: before training when the
Distiller builds the losses (graph models), or at the first call (subclassed models with
``call_with_features``). The built shapes are saved as the layer's build config, so a loaded loss
recreates its adapters before its weights are restored. The tensor ops the losses share live here
too; ``attention_map`` and ``fsp_matrix`` are public through ``keras_kd.losses.feature``.
"""

from keras_kd._compat import keras, tf
from keras_kd.losses.base import DistillationLoss, as_float32

EPSILON = 1e-12  # added inside L2 normalizations, on the sum of squares
_LOGITS_PAIR = ("teacher logits", "student logits")


class FeatureLoss(DistillationLoss):
    """Base class of the losses on features: ``pairs``, ``build`` once, then ``call``.

    ``pairs=[(teacher_layer, student_layer), ...]`` names the layers whose outputs the Distiller
    taps, one forward pass per model. Calling the layer on ``(teacher_features,
    student_features)``, one tensor per pair in the order of ``pairs``, casts them to float32,
    stops the teacher's gradient, runs ``build`` with their shapes, then ``call`` on the two lists.
    Gradients reach the student and the loss's own weights (adapters) only.

    A subclass implements ``call(teacher_features, student_features)`` and may implement the two
    steps of ``build``: ``check_shapes(teacher_shapes, student_shapes)`` (raise ``ValueError``
    naming layers and shapes, e.g. with ``describe``) and ``create_weights`` with the same
    arguments (e.g. adapters, which must be float32 layers). Both receive lists of
    ``tf.TensorShape`` with the batch axis.

    A subclass that sets ``logits_without_pairs = True`` (the relational losses) accepts
    ``pairs=None`` and then compares the two models' logits, as one pair.

    Paper: Romero, Ballas, Kahou, Chassang, Gatta & Bengio (2015), "FitNets: Hints for Thin Deep
    Nets" (losses on intermediate features).

    Args:
        pairs: ``[(teacher_layer_name, student_layer_name), ...]``.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Returns:
        Calling the layer returns what ``call`` returns: a scalar float32 tensor.

    Raises:
        ValueError: If ``pairs`` is missing, empty or malformed; at ``build``, if the shapes do not
            suit the loss.

    Example:
        >>> class MeanFeatureGap(FeatureLoss):
        ...     def call(self, teacher_features, student_features):
        ...         gaps = [tf.reduce_mean(t, -1) - tf.reduce_mean(s, -1)
        ...                 for t, s in zip(teacher_features, student_features)]
        ...         return tf.add_n([tf.reduce_mean(tf.square(g)) for g in gaps]) / len(gaps)
        >>> loss = MeanFeatureGap(pairs=[("t_block2", "s_block2")])
        >>> value = loss([tf.ones((2, 4, 4, 32))], [tf.zeros((2, 4, 4, 16))])
    """

    logits_without_pairs = False

    def __init__(self, pairs, **kwargs):
        super().__init__(**kwargs)
        if pairs is None and not self.logits_without_pairs:
            raise ValueError(
                "pairs must be a list of (teacher_layer_name, student_layer_name) tuples for a "
                "feature loss, received: pairs=None"
            )
        self.pairs = validate_pairs(pairs)
        self._prepared = None

    def __call__(self, teacher_features, student_features, *args, **kwargs):
        teacher = [tf.stop_gradient(as_float32(t)) for t in _as_list(teacher_features)]
        student = [as_float32(s) for s in _as_list(student_features)]
        self.build([t.shape for t in teacher], [s.shape for s in student])
        return super().__call__(teacher, student, *args, **kwargs)

    def pick_features(self, logits, features, side):
        """This loss's inputs among one model's outputs, in the order of ``pairs``.

        Args:
            logits: The model's logits (used when ``pairs`` is ``None``).
            features: ``{layer_name: tensor or shape}`` of the model's tapped layers.
            side: 0 for the teacher, 1 for the student.

        Returns:
            A list with one entry per pair.

        Example:
            >>> teacher_features = loss.pick_features(teacher_logits, tapped, side=0)
        """
        if self.pairs is None:
            return [logits]
        return [features[pair[side]] for pair in self.pairs]

    def build(self, teacher_shapes, student_shapes=None):
        """Checks the feature shapes and creates the loss's weights; a no-op when already built.

        Args:
            teacher_shapes: Static shapes (with the batch axis) of the teacher features, one per
                pair in the order of ``pairs``.
            student_shapes: Static shapes of the student features, in the same order. ``None``
                (Keras's own first-call build, which knows the teacher side only) does nothing:
                calling the layer builds it with both sides first.

        Raises:
            ValueError: If there is not one shape per pair, a shape does not suit the loss, or the
                loss was already built for other shapes.
        """
        if student_shapes is None:
            return
        t_shapes = [tf.TensorShape(s) for s in teacher_shapes]
        s_shapes = [tf.TensorShape(s) for s in student_shapes]
        pairs = self.pairs or [_LOGITS_PAIR]
        if len(t_shapes) != len(pairs) or len(s_shapes) != len(pairs):
            raise ValueError(
                f"{self.name}: pairs={self.pairs} names {len(pairs)} pairs but received "
                f"{len(t_shapes)} teacher and {len(s_shapes)} student features"
            )
        if self._prepared is not None:
            old_t, old_s = self._prepared
            if all(_same_example_shape(a, b) for a, b in zip(old_t + old_s, t_shapes + s_shapes)):
                return
            raise ValueError(
                f"{self.name} was prepared for teacher shapes {old_t} and student shapes {old_s} "
                f"but received teacher shapes {t_shapes} and student shapes {s_shapes}; a loss "
                "layer is built for one pair of models, so make a new one for other models"
            )
        for index, (t_shape, s_shape) in enumerate(zip(t_shapes, s_shapes)):
            if t_shape.rank is None or s_shape.rank is None:
                pair = self.describe(index, t_shape, s_shape)
                raise ValueError(f"{self.name}: {pair}; ranks must be known")
        self.check_shapes(t_shapes, s_shapes)
        with tf.init_scope():  # weights made at a first call inside tf.function are made eagerly
            self.create_weights(t_shapes, s_shapes)
        self._prepared = (t_shapes, s_shapes)
        self.built = True

    def prepare(self, teacher_shapes, student_shapes):
        """``build``, under its name in earlier keras_kd versions."""
        self.build(teacher_shapes, student_shapes)

    def check_shapes(self, teacher_shapes, student_shapes):
        """Raises ``ValueError`` if the shapes do not suit the loss; any shapes by default."""
        del teacher_shapes, student_shapes

    def create_weights(self, teacher_shapes, student_shapes):
        """Creates the loss's weights (adapters) for these shapes; none by default."""
        del teacher_shapes, student_shapes

    def describe(self, index, teacher_shape, student_shape):
        """Names the layers and shapes of pair ``index`` for error messages."""
        teacher_layer, student_layer = (self.pairs or [_LOGITS_PAIR])[index]
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

    def get_config(self):
        return {**super().get_config(), "pairs": self.pairs}

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
            self.build(config["teacher_shapes"], config["student_shapes"])


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


def mean_over_pairs(term, *per_pair):
    """The mean over pairs of ``term(*entries)``, with one entry per list of ``per_pair``.

    Example:
        >>> mean_over_pairs(lambda t, s: tf.reduce_mean(tf.square(t - s)), teacher, student)
    """
    terms = [term(*entries) for entries in zip(*per_pair)]
    return tf.add_n(terms) / len(terms)


def make_adapter(rank, channels, name):
    if rank == 4:
        return keras.layers.Conv2D(channels, 1, name=name, dtype="float32")
    if rank == 3:
        return keras.layers.Conv1D(channels, 1, name=name, dtype="float32")
    return keras.layers.Dense(channels, name=name, dtype="float32")


def validate_pairs(pairs):
    """Returns ``pairs`` as a list of ``(teacher_layer, student_layer)`` tuples (``None`` stays).

    Raises:
        ValueError: If ``pairs`` is empty or holds anything but pairs of layer names.
    """
    if pairs is None:
        return None
    if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__iter__"):
        raise ValueError(
            "pairs must be a list of (teacher_layer_name, student_layer_name) tuples, "
            f"received: pairs={pairs!r}"
        )
    pairs = [tuple(p) if isinstance(p, (list, tuple)) else p for p in pairs]
    if not pairs:
        raise ValueError(
            "pairs must name at least one (teacher_layer, student_layer) pair, received: pairs=[]"
        )
    for pair in pairs:
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(n, str) for n in pair)
        ):
            raise ValueError(
                "each entry of pairs must be a (teacher_layer_name, student_layer_name) tuple of "
                "strings, "
                f"received: pairs={pairs!r}, whose entry {pair!r} is not one"
            )
    return pairs


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
