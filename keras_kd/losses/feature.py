"""Distillation losses on intermediate features: FitNet hints, attention transfer, FSP and NST.

Every loss names the tapped layers it compares, ``pairs=[(teacher_layer, student_layer), ...]``
(``FSP`` takes ``flows`` and derives ``pairs``) and subclasses ``FeatureLoss``:
``loss(teacher_features, student_features)`` with one tensor per pair returns a scalar float32
batch mean. Shapes are checked, and adapters created, when the Distiller
is made (graph models) or at the first call (subclassed models); a ``ValueError`` names both layers
and both shapes. Features are cast to float32, and the teacher side is a constant.
"""

from keras_kd._checks import check_choice, check_number, check_positive_int
from keras_kd._compat import keras, tf
from keras_kd.losses._feature_base import (
    EPSILON,
    FeatureLoss,
    attention_map,
    channel_samples,
    fsp_matrix,
    make_adapter,
    mean_over_pairs,
    resize_spatial,
    same_spatial,
    spatial_dims,
    static_equal,
    validate_flows,
)

__all__ = ["FSP", "NST", "AttentionTransfer", "FitNetHint", "attention_map", "fsp_matrix"]

_ADAPTER_MODES = ("auto", "always", "never")
_NST_KERNELS = ("polynomial", "linear")


@keras.utils.register_keras_serializable(package="keras_kd")
class FitNetHint(FeatureLoss):
    """FitNet hint: mean squared error between teacher features and adapted student features.

    An adapter (the paper's regressor) maps each student feature to the teacher's channel count: a
    1x1 ``Conv2D`` for maps ``(batch, H, W, C)``, a 1x1 ``Conv1D`` for sequences ``(batch, L, C)``
    and a ``Dense`` layer for vectors ``(batch, C)``. Its weights train with the student
    (``loss.adapters``). The loss is the mean over pairs of
    ``mean((teacher - adapter(student))**2)``; the paper's ``1/2 ||.||^2`` summed over elements
    differs by a constant factor, which ``loss_weights`` absorbs. The paper trains the hint as a
    first stage of its own; here it is a term of the Distiller's loss, trained jointly with the
    others.

    What holds without an adapter: the loss is zero exactly when the features are equal, symmetric,
    unchanged when one constant is added to both, and multiplied by ``c**2`` when both are
    multiplied by ``c``. With an adapter, the minimum 0 is reached when the adapter maps the student
    onto the teacher.

    Paper: Romero, Ballas, Kahou, Chassang, Gatta & Bengio (2015), "FitNets: Hints for Thin Deep
    Nets".

    Args:
        pairs: ``[(teacher_layer_name, student_layer_name), ...]``; the two features of a pair have
            the same rank (2, 3 or 4) and the same spatial sizes.
        adapter: ``"auto"`` (an adapter only where the channel counts differ), ``"always"`` (one on
            every pair, as in the paper) or ``"never"`` (channel counts must then match).
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, default ``"fitnet_hint"``).

    Returns:
        Calling the layer on ``(teacher_features, student_features)``, two lists with one tensor per
        pair, returns a scalar float32 tensor.

    Raises:
        ValueError: If ``adapter`` is unknown, or (before training) the ranks of a pair differ or
            are not 2, 3 or 4, the spatial sizes differ, or ``adapter="never"`` and the channels
            differ.

    Example:
        >>> hint = FitNetHint(pairs=[("t_block2", "s_block2")])
        >>> value = hint([tf.ones((2, 4, 4, 32))], [tf.ones((2, 4, 4, 16))])
        >>> [a.name for a in hint.adapters]
        ['fitnet_hint_adapter_0']
    """

    def __init__(self, pairs, adapter="auto", **kwargs):
        kwargs.setdefault("name", "fitnet_hint")
        super().__init__(pairs, **kwargs)
        self.adapter = check_choice("adapter", adapter, _ADAPTER_MODES)
        self.adapters = []

    def check_shapes(self, teacher_shapes, student_shapes):
        for index, (t_shape, s_shape) in enumerate(zip(teacher_shapes, student_shapes)):
            self.check_ranks(index, t_shape, s_shape, (2, 3, 4), "vectors, sequences or images")
            pair = self.describe(index, t_shape, s_shape)
            if not same_spatial(t_shape, s_shape):
                raise ValueError(
                    f"{self.name}: {pair}; FitNetHint needs equal spatial sizes, so pair layers "
                    "of the same resolution (AttentionTransfer and NST resize instead)"
                )
            if t_shape[-1] is None or s_shape[-1] is None:
                raise ValueError(f"{self.name}: {pair}; the channel counts must be known")
            if self.adapter == "never" and t_shape[-1] != s_shape[-1]:
                raise ValueError(
                    f"{self.name}: {pair}; the channel counts differ, which needs an adapter, but "
                    "adapter='never'"
                )

    def create_weights(self, teacher_shapes, student_shapes):
        adapters = []
        for index, (t_shape, s_shape) in enumerate(zip(teacher_shapes, student_shapes)):
            if self.adapter == "always" or (self.adapter == "auto" and t_shape[-1] != s_shape[-1]):
                layer = make_adapter(t_shape.rank, t_shape[-1], f"{self.name}_adapter_{index}")
                layer.build(s_shape)
                adapters.append(layer)
            else:
                adapters.append(None)
        self.adapters = adapters

    def call(self, teacher, student):
        return mean_over_pairs(self._term, teacher, student, self.adapters)

    def _term(self, t, s, adapter):
        return tf.reduce_mean(tf.square(t - (s if adapter is None else adapter(s))))

    def get_config(self):
        return {**super().get_config(), "adapter": self.adapter}


class _SpatialLoss(FeatureLoss):
    """A feature loss on sequences or images: the mean over pairs of ``_term(t, s)``."""

    def check_shapes(self, teacher_shapes, student_shapes):
        for index, (t_shape, s_shape) in enumerate(zip(teacher_shapes, student_shapes)):
            self.check_ranks(index, t_shape, s_shape, (3, 4), "sequences or images")

    def call(self, teacher, student):
        return mean_over_pairs(self._term, teacher, student)

    def _term(self, t, s):
        raise NotImplementedError


@keras.utils.register_keras_serializable(package="keras_kd")
class AttentionTransfer(_SpatialLoss):
    """Attention transfer: match the student's spatial attention maps to the teacher's.

    For each pair, the attention map (``attention_map``: mean over channels of ``|f|**p``) of
    either side is flattened and L2-normalized per example; the loss is the mean over pairs of the
    mean squared difference of the two normalized maps, as in the authors' released code. They
    weigh the sum over pairs by ``beta/2 = 500`` for 32x32 CIFAR maps; the mean over positions grows
    as maps shrink, so start lower on small maps (on 8x8 digits a weight of 1000 stalled training,
    weights up to 10 did not). Channel counts may differ. When the spatial sizes differ, the
    teacher's attention map is resized to the student's size before normalizing, so layers of
    different resolutions can be paired: block averages when the teacher's sizes are whole
    multiples of the student's (8x8 to 4x4), bilinear interpolation otherwise.

    The loss is invariant to multiplying either feature by a positive number, lies in
    ``[0, 2 / positions]`` (the maps are non-negative unit vectors), and is zero when the two maps
    are proportional.

    Paper: Zagoruyko & Komodakis (2017), "Paying More Attention to Attention: Improving the
    Performance of Convolutional Neural Networks via Attention Transfer".

    Args:
        pairs: ``[(teacher_layer_name, student_layer_name), ...]`` of images ``(batch, H, W, C)``
            or sequences ``(batch, L, C)``, the same rank within a pair.
        p: The exponent of the attention map, >= 1. Default 2 as in the paper.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, default ``"attention_transfer"``).

    Returns:
        Calling the layer on ``(teacher_features, student_features)`` returns a scalar float32
        tensor.

    Raises:
        ValueError: If ``p`` is not a number >= 1, or (before training) the ranks of a pair
            differ or are not 3 or 4.

    Example:
        >>> at = AttentionTransfer(pairs=[("t_block1", "s_block1"), ("t_block2", "s_block2")])
        >>> value = at([tf.ones((2, 8, 8, 16)), tf.ones((2, 4, 4, 32))],
        ...            [tf.ones((2, 8, 8, 8)), tf.ones((2, 4, 4, 16))])
    """

    def __init__(self, pairs, p=2.0, **kwargs):
        kwargs.setdefault("name", "attention_transfer")
        super().__init__(pairs, **kwargs)
        self.p = check_number("p", p, minimum=1.0)

    def _term(self, t, s):
        t_map = _resized_like(attention_map(t, self.p)[..., tf.newaxis], s)[..., 0]
        t_vec, s_vec = _unit_rows(t_map), _unit_rows(attention_map(s, self.p))
        return tf.reduce_mean(tf.square(t_vec - s_vec))

    def get_config(self):
        return {**super().get_config(), "p": self.p}


@keras.utils.register_keras_serializable(package="keras_kd")
class FSP(FeatureLoss):
    """FSP: match the teacher's flow of solution procedure matrices between pairs of layers.

    A flow goes from layer ``a`` to layer ``b`` of one network, and compares its FSP matrix
    (``fsp_matrix``: ``F_a^T F_b / (H * W)``, shape ``(C_a, C_b)``) with the student's flow:
    ``flows=[((teacher_a, teacher_b), (student_a, student_b)), ...]``. Each flow becomes two entries
    of the contract's flat ``pairs``, ``(teacher_a, student_a)`` then ``(teacher_b, student_b)``,
    so the Distiller taps the four layers unchanged (``FSP.from_pairs`` is the inverse). The loss is
    the mean over flows of the mean squared difference of the two matrices; the paper sums the
    squared differences over the ``C_a * C_b`` entries, a constant factor per flow.

    What holds: the loss is zero when the student's features equal the teacher's, and multiplying
    all four features by ``c`` multiplies it by ``c**4``. It is not scale-invariant.

    Paper: Yim, Joo, Bae & Kim (2017), "A Gift from Knowledge Distillation: Fast Optimization,
    Network Minimization and Transfer Learning".

    Args:
        flows: ``[((teacher_a, teacher_b), (student_a, student_b)), ...]`` layer names. Within a
            side, ``a`` and ``b`` have the same spatial sizes; across sides, ``teacher_a`` and
            ``student_a`` (and ``teacher_b`` and ``student_b``) have the same channel count.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, default ``"fsp"``).

    Returns:
        Calling the layer on ``(teacher_features, student_features)``, in the order of ``pairs``,
        returns a scalar float32 tensor.

    Raises:
        ValueError: If ``flows`` is malformed, or (before training) a rank is not 3 or 4 or differs,
            the spatial sizes of ``a`` and ``b`` differ within one side, or channel counts differ.

    Example:
        >>> fsp = FSP(flows=[(("t_pool1", "t_block2"), ("s_pool1", "s_block2"))])
        >>> list(fsp.pairs)
        [('t_pool1', 's_pool1'), ('t_block2', 's_block2')]
    """

    def __init__(self, flows, **kwargs):
        kwargs.setdefault("name", "fsp")
        flows = validate_flows(flows)
        pairs = [pair for (ta, tb), (sa, sb) in flows for pair in ((ta, sa), (tb, sb))]
        super().__init__(pairs, **kwargs)
        self.flows = flows

    @classmethod
    def from_pairs(cls, pairs, **kwargs):
        """Makes an ``FSP`` whose flow ``k`` goes from ``pairs[2k]`` to ``pairs[2k + 1]``.

        Args:
            pairs: An even number of ``(teacher_layer, student_layer)`` pairs.
            **kwargs: Passed to ``FSP``.

        Returns:
            A new ``FSP`` with
            ``flows=[((pairs[0][0], pairs[1][0]), (pairs[0][1], pairs[1][1])), ...]``.

        Raises:
            ValueError: If ``pairs`` does not hold an even, non-zero number of pairs.

        Example:
            >>> list(FSP.from_pairs([("t_pool1", "s_pool1"), ("t_block2", "s_block2")]).flows)
            [(('t_pool1', 't_block2'), ('s_pool1', 's_block2'))]
        """
        pairs = [tuple(p) for p in pairs]
        if not pairs or len(pairs) % 2:
            raise ValueError(
                "pairs must hold an even number of (teacher_layer, student_layer) pairs, two per "
                f"flow, received: pairs={pairs!r}"
            )
        flows = [((a[0], b[0]), (a[1], b[1])) for a, b in zip(pairs[0::2], pairs[1::2])]
        return cls(flows, **kwargs)

    def check_shapes(self, teacher_shapes, student_shapes):
        for flow in range(len(self.flows)):
            a, b = 2 * flow, 2 * flow + 1
            for index in (a, b):
                self.check_ranks(
                    index,
                    teacher_shapes[index],
                    student_shapes[index],
                    (3, 4),
                    "sequences or images",
                )
            for side, shapes in (("teacher", teacher_shapes), ("student", student_shapes)):
                if not same_spatial(shapes[a], shapes[b]):
                    names = self.flows[flow][0 if side == "teacher" else 1]
                    raise ValueError(
                        f"{self.name}: {side} layer {names[0]!r} has shape {shapes[a]} and {side} "
                        f"layer {names[1]!r} has shape {shapes[b]}; the two layers of a flow must "
                        "have the same spatial sizes"
                    )
            for index in (a, b):
                t_shape, s_shape = teacher_shapes[index], student_shapes[index]
                if t_shape[-1] != s_shape[-1]:
                    raise ValueError(
                        f"{self.name}: {self.describe(index, t_shape, s_shape)}; teacher and "
                        "student FSP matrices need the same channel counts"
                    )

    def call(self, teacher, student):
        # Flow k taps pairs 2k (its layer a) and 2k + 1 (its layer b).
        return mean_over_pairs(self._term, teacher[::2], teacher[1::2], student[::2], student[1::2])

    def _term(self, t_a, t_b, s_a, s_b):
        return tf.reduce_mean(tf.square(fsp_matrix(t_a, t_b) - fsp_matrix(s_a, s_b)))

    def get_config(self):
        config = super().get_config()
        del config["pairs"]  # FSP takes flows, from which its pairs follow
        return {**config, "flows": [[list(t), list(s)] for t, s in self.flows]}


@keras.utils.register_keras_serializable(package="keras_kd")
class NST(_SpatialLoss):
    """Neuron selectivity transfer: match the distributions of the channels' spatial maps.

    Each channel's map, flattened over the positions and L2-normalized, is one sample; the loss is
    the squared maximum mean discrepancy between the teacher's and the student's samples,

        MMD^2 = mean k(t_i, t_i') + mean k(s_j, s_j') - 2 mean k(t_i, s_j),

    per example, averaged over the batch and the pairs. The kernel is ``"polynomial"``
    ``k(x, y) = (x.y + constant) ** degree`` (the paper's choice: degree 2, constant 0) or
    ``"linear"`` ``k(x, y) = x.y``. Channel counts may differ. When the spatial sizes differ, the
    teacher's feature map is resized to the student's: block averages when the teacher's sizes are
    whole multiples of the student's, bilinear interpolation otherwise.

    The loss is invariant to multiplying any channel of either feature by a positive number and is
    zero when the student's features equal the teacher's.

    Paper: Huang & Wang (2017), "Like What You Like: Knowledge Distill via Neuron Selectivity
    Transfer".

    Args:
        pairs: ``[(teacher_layer_name, student_layer_name), ...]`` of images ``(batch, H, W, C)``
            or sequences ``(batch, L, C)``, the same rank within a pair.
        kernel: ``"polynomial"`` (default) or ``"linear"``.
        degree: Degree of the polynomial kernel, an integer >= 1. Default 2.
        constant: Constant of the polynomial kernel, >= 0. Default 0.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, default ``"nst"``).

    Returns:
        Calling the layer on ``(teacher_features, student_features)`` returns a scalar float32
        tensor.

    Raises:
        ValueError: If an argument is invalid, or (before training) the ranks of a pair differ or
            are not 3 or 4.

    Example:
        >>> nst = NST(pairs=[("t_block2", "s_block2")])
        >>> value = nst([tf.random.uniform((2, 4, 4, 32))], [tf.random.uniform((2, 4, 4, 16))])
    """

    def __init__(self, pairs, kernel="polynomial", degree=2, constant=0.0, **kwargs):
        kwargs.setdefault("name", "nst")
        super().__init__(pairs, **kwargs)
        self.kernel = check_choice("kernel", kernel, _NST_KERNELS)
        self.degree = check_positive_int("degree", degree)
        self.constant = check_number("constant", constant, minimum=0.0)

    def _term(self, t, s):
        t_samples, s_samples = channel_samples(_resized_like(t, s)), channel_samples(s)
        mmd = (
            tf.reduce_mean(self._kernel(t_samples, t_samples), axis=[1, 2])
            + tf.reduce_mean(self._kernel(s_samples, s_samples), axis=[1, 2])
            - 2.0 * tf.reduce_mean(self._kernel(t_samples, s_samples), axis=[1, 2])
        )
        return tf.reduce_mean(mmd)

    def _kernel(self, x, y):
        dot = tf.matmul(x, y, transpose_b=True)
        if self.kernel == "linear":
            return dot
        return tf.pow(dot + self.constant, float(self.degree))

    def get_config(self):
        return {
            **super().get_config(),
            "kernel": self.kernel,
            "degree": self.degree,
            "constant": self.constant,
        }


def _resized_like(x, like):
    """``x`` resized to the spatial sizes of ``like`` (``resize_spatial``), unless already equal."""
    if static_equal(spatial_dims(x.shape), spatial_dims(like.shape)):
        return x
    static = spatial_dims(like.shape)
    return resize_spatial(x, static if None not in static else tf.shape(like)[1:-1])


def _unit_rows(x):
    """``x`` flattened to ``(batch, -1)``, each row L2-normalized."""
    return tf.math.l2_normalize(tf.reshape(x, [tf.shape(x)[0], -1]), -1, EPSILON)
