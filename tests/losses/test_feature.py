"""Tests of the feature losses (FitNetHint, AttentionTransfer, FSP, NST) against numpy references,
their promised properties, their shape checks at Distiller construction, and training with them."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf
from keras_kd.losses.feature import (
    FSP,
    NST,
    AttentionTransfer,
    FitNetHint,
    attention_map,
    fsp_matrix,
)
from tests.conftest import weights_equal

BLOCKS = [("t_block1", "s_block1"), ("t_block2", "s_block2")]
FLOWS = [(("t_pool1", "t_block2"), ("s_pool1", "s_block2"))]


# Independent numpy references (float64).


def _unit_rows(m):
    return m / np.sqrt((m**2).sum(axis=-1, keepdims=True))


def _np_fitnet(loss, teacher, student):
    terms = []
    for t, s, adapter in zip(teacher, student, loss.adapters):
        if adapter is not None:
            kernel, bias = (w.astype(np.float64) for w in adapter.get_weights())
            s = s @ kernel.reshape(kernel.shape[-2:]) + bias
        terms.append(np.mean((t - s) ** 2))
    return np.mean(terms)


def _np_resize(x, size):
    """(batch, *spatial, C) to spatial size: block means for whole factors, else tf's bilinear."""
    source = x.shape[1:-1]
    if all(a % b == 0 for a, b in zip(source, size)):
        blocks = [d for a, b in zip(source, size) for d in (b, a // b)]
        return x.reshape([len(x), *blocks, x.shape[-1]]).mean(
            axis=tuple(range(2, 2 * len(size) + 1, 2))
        )
    if x.ndim == 3:
        return tf.image.resize(x[:, :, None, :], (size[0], 1), method="bilinear").numpy()[
            :, :, 0, :
        ]
    return tf.image.resize(x, size, method="bilinear").numpy()


def _np_attention(loss, teacher, student):
    terms = []
    for t, s in zip(teacher, student):
        t_map, s_map = (np.abs(t) ** loss.p).mean(axis=-1), (np.abs(s) ** loss.p).mean(axis=-1)
        if t_map.shape != s_map.shape:
            t_map = _np_resize(t_map[..., None], s_map.shape[1:])[..., 0]
        t_vec, s_vec = _unit_rows(t_map.reshape(len(t), -1)), _unit_rows(s_map.reshape(len(s), -1))
        terms.append(np.mean((t_vec - s_vec) ** 2))
    return np.mean(terms)


def _np_fsp(loss, teacher, student):
    def matrix(a, b):
        a, b = a.reshape(len(a), -1, a.shape[-1]), b.reshape(len(b), -1, b.shape[-1])
        return np.einsum("bnc,bnd->bcd", a, b) / a.shape[1]

    return np.mean(
        [
            np.mean((matrix(teacher[i], teacher[i + 1]) - matrix(student[i], student[i + 1])) ** 2)
            for i in range(0, len(teacher), 2)
        ]
    )


def _np_nst(loss, teacher, student):
    def kernel(x, y):
        dot = x @ np.swapaxes(y, 1, 2)
        return dot if loss.kernel == "linear" else (dot + loss.constant) ** loss.degree

    def samples(f):
        return _unit_rows(np.swapaxes(f.reshape(len(f), -1, f.shape[-1]), 1, 2))

    terms = []
    for t, s in zip(teacher, student):
        if t.shape[1:-1] != s.shape[1:-1]:
            t = _np_resize(t, s.shape[1:-1])
        t, s = samples(t), samples(s)
        mmd = kernel(t, t).mean((1, 2)) + kernel(s, s).mean((1, 2)) - 2 * kernel(t, s).mean((1, 2))
        terms.append(mmd.mean())
    return np.mean(terms)


# One case per loss configuration: the loss, teacher and student feature shapes, the reference.
CASES = {
    "fitnet": (
        lambda: FitNetHint([("a", "b"), ("c", "d"), ("e", "f"), ("g", "h")]),
        [(4, 6, 6, 6), (4, 10, 5), (4, 7), (4, 3, 3, 4)],
        [(4, 6, 6, 3), (4, 10, 2), (4, 3), (4, 3, 3, 4)],
        _np_fitnet,
    ),
    "fitnet_no_adapter": (
        lambda: FitNetHint([("a", "b"), ("c", "d")]),
        [(4, 6, 6, 3), (4, 5)],
        [(4, 6, 6, 3), (4, 5)],
        _np_fitnet,
    ),
    "at": (
        lambda: AttentionTransfer([("a", "b"), ("c", "d")]),
        [(4, 6, 6, 6), (4, 10, 5)],
        [(4, 6, 6, 3), (4, 10, 2)],
        _np_attention,
    ),
    "at_resized": (  # block means (8x8 to 4x4, 12 to 3), bilinear down (6x6 to 4x4) and up
        lambda: AttentionTransfer([("a", "b"), ("c", "d"), ("e", "f"), ("g", "h")]),
        [(4, 8, 8, 6), (4, 12, 5), (4, 6, 6, 3), (4, 4, 4, 3)],
        [(4, 4, 4, 3), (4, 3, 2), (4, 4, 4, 3), (4, 8, 6, 2)],
        _np_attention,
    ),
    "nst_resized": (
        lambda: NST([("a", "b"), ("c", "d"), ("e", "f")]),
        [(4, 8, 8, 6), (4, 12, 5), (4, 6, 6, 3)],
        [(4, 4, 4, 3), (4, 6, 2), (4, 4, 4, 3)],
        _np_nst,
    ),
    "at_p3": (
        lambda: AttentionTransfer([("a", "b")], p=3),
        [(4, 5, 5, 6)],
        [(4, 5, 5, 2)],
        _np_attention,
    ),
    "fsp": (
        lambda: FSP([(("a", "b"), ("c", "d")), (("e", "f"), ("g", "h"))]),
        [(4, 6, 6, 3), (4, 6, 6, 5), (4, 9, 2), (4, 9, 4)],
        [(4, 6, 6, 3), (4, 6, 6, 5), (4, 9, 2), (4, 9, 4)],
        _np_fsp,
    ),
    "nst": (
        lambda: NST([("a", "b"), ("c", "d")]),
        [(4, 6, 6, 6), (4, 10, 5)],
        [(4, 6, 6, 3), (4, 10, 2)],
        _np_nst,
    ),
    "nst_linear": (
        lambda: NST([("a", "b")], kernel="linear"),
        [(4, 5, 5, 6)],
        [(4, 5, 5, 3)],
        _np_nst,
    ),
    "nst_cubic": (
        lambda: NST([("a", "b")], degree=3, constant=1.0),
        [(4, 5, 5, 6)],
        [(4, 5, 5, 3)],
        _np_nst,
    ),
}


def _features(shapes, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=shape) * scale).astype(np.float32) for shape in shapes]


def _case(name, scale=1.0):
    make, t_shapes, s_shapes, reference = CASES[name]
    return make(), _features(t_shapes, 0, scale), _features(s_shapes, 1, scale), reference


def _value(loss, teacher, student, dtype=tf.float32):
    return float(
        loss([tf.constant(t, dtype) for t in teacher], [tf.constant(s, dtype) for s in student])
    )


def _float64(features):
    return [f.astype(np.float64) for f in features]


@pytest.mark.parametrize("scale", [1.0, 1e3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_feature_loss_matches_numpy_reference(name, scale):
    loss, teacher, student, reference = _case(name, scale)
    value = _value(loss, teacher, student)
    assert np.isfinite(value)
    expected = reference(loss, _float64(teacher), _float64(student))
    np.testing.assert_allclose(value, expected, rtol=2e-4, atol=1e-9)


@pytest.mark.parametrize("name", ["fitnet_no_adapter", "at", "fsp", "nst"])
def test_feature_loss_is_zero_when_student_features_equal_the_teachers(name):
    loss, teacher, _, _ = _case(name)
    assert _value(loss, teacher, teacher) == pytest.approx(0.0, abs=1e-6)


def test_fitnet_reaches_zero_when_the_adapter_maps_the_student_onto_the_teacher():
    rng = np.random.default_rng(2)
    student = rng.normal(size=(4, 5, 5, 3)).astype(np.float32)
    kernel = rng.normal(size=(1, 1, 3, 6)).astype(np.float32)
    teacher = student @ kernel[0, 0] + 0.5
    loss = FitNetHint([("t", "s")])
    assert _value(loss, [teacher], [student]) > 0.1
    loss.adapters[0].set_weights([kernel, np.full(6, 0.5, np.float32)])
    assert _value(loss, [teacher], [student]) == pytest.approx(0.0, abs=1e-6)


def _scale_channels(features):
    return [f * np.geomspace(1e-3, 1e3, f.shape[-1]).astype(np.float32) for f in features]


# name: (case, transform of (teacher, student), expected factor on the loss)
PROPERTIES = {
    "at_positive_scale": ("at", lambda t, s: ([1e-3 * x for x in t], [1e3 * x for x in s]), 1.0),
    "at_huge_features": ("at", lambda t, s: ([1e20 * x for x in t], [1e20 * x for x in s]), 1.0),
    "nst_positive_channel_scales": (
        "nst",
        lambda t, s: (_scale_channels(t), [7.0 * x for x in s]),
        1.0,
    ),
    "nst_huge_features": ("nst", lambda t, s: ([1e20 * x for x in t], [1e20 * x for x in s]), 1.0),
    "fitnet_shift_and_scale": (
        "fitnet_no_adapter",
        lambda t, s: ([3 * x + 11 for x in t], [3 * x + 11 for x in s]),
        9.0,
    ),
    "fitnet_symmetric": ("fitnet_no_adapter", lambda t, s: (s, t), 1.0),
    "fsp_scale": ("fsp", lambda t, s: ([10 * x for x in t], [10 * x for x in s]), 1e4),
}


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_feature_loss_invariances_and_scaling(name):
    case, transform, factor = PROPERTIES[name]
    loss, teacher, student, _ = _case(case)
    base = _value(loss, teacher, student)
    assert base > 0
    np.testing.assert_allclose(_value(loss, *transform(teacher, student)), factor * base, rtol=1e-4)


def test_attention_transfer_of_constant_maps_at_different_sizes_is_zero():
    teacher, student = np.ones((2, 8, 8, 4), np.float32), 3 * np.ones((2, 3, 3, 2), np.float32)
    value = _value(AttentionTransfer([("t", "s")]), [teacher], [student])
    assert value == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("make", [AttentionTransfer, NST])
def test_resizing_losses_compile_under_xla(make):
    loss = make([("a", "b"), ("c", "d")])  # block means, then bilinear interpolation
    teacher, student = _features([(2, 8, 8, 3), (2, 6, 6, 3)], 0), _features([(2, 4, 4, 2)] * 2, 1)
    eager = _value(loss, teacher, student)
    compiled = tf.function(lambda t, s: loss(t, s), jit_compile=True)
    value = compiled([tf.constant(t) for t in teacher], [tf.constant(s) for s in student])
    np.testing.assert_allclose(float(value), eager, rtol=1e-5)


def test_fsp_matrix_and_attention_map_are_public_and_checked():
    a, b = _features([(2, 3, 3, 4), (2, 3, 3, 5)], 0)
    expected = np.einsum("bnc,bnd->bcd", a.reshape(2, 9, 4), b.reshape(2, 9, 5)) / 9
    np.testing.assert_allclose(fsp_matrix(a, b).numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(
        ValueError, match=r"same spatial sizes, received shapes \(2, 3, 3, 4\) and \(2, 4, 4, 5\)"
    ):
        fsp_matrix(a, np.zeros((2, 4, 4, 5), np.float32))
    assert attention_map(a).shape == (2, 3, 3)


@pytest.mark.parametrize("name", ["fitnet", "at", "fsp", "nst"])
def test_float16_features_are_computed_in_float32(name):
    loss, teacher, student, _ = _case(name)
    half = loss(
        [tf.constant(t, tf.float16) for t in teacher], [tf.constant(s, tf.float16) for s in student]
    )
    assert half.dtype == tf.float32
    full = _value(
        loss, [t.astype(np.float16) for t in teacher], [s.astype(np.float16) for s in student]
    )
    np.testing.assert_allclose(float(half), full, rtol=1e-5)


def test_fitnet_adapters_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        loss = FitNetHint([("t", "s")])
        value = loss([tf.ones((2, 4, 4, 8), tf.float16)], [tf.ones((2, 4, 4, 4), tf.float16)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert value.dtype == tf.float32
    assert all(v.dtype == tf.float32 for v in loss.trainable_variables)


@pytest.mark.parametrize("name", ["fitnet", "at_p3", "fsp", "nst_cubic"])
def test_feature_loss_config_round_trip_gives_the_same_value(name):
    loss, teacher, student, _ = _case(name)
    value = _value(loss, teacher, student)
    restored = type(loss).from_config(loss.get_config())
    assert restored.get_config() == loss.get_config()
    restored.prepare([t.shape for t in teacher], [s.shape for s in student])
    restored.set_weights(loss.get_weights())
    assert _value(restored, teacher, student) == pytest.approx(value, rel=1e-6)
    # Deserializing rebuilds the adapters from the saved build config.
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert [w.shape for w in copy.weights] == [w.shape for w in loss.weights]


def test_fsp_from_pairs_groups_consecutive_pairs_into_flows():
    fsp = FSP.from_pairs([("t_a", "s_a"), ("t_b", "s_b"), ("t_c", "s_c"), ("t_d", "s_d")])
    assert fsp.flows == [(("t_a", "t_b"), ("s_a", "s_b")), (("t_c", "t_d"), ("s_c", "s_d"))]
    assert list(fsp.pairs) == [("t_a", "s_a"), ("t_b", "s_b"), ("t_c", "s_c"), ("t_d", "s_d")]


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: FitNetHint(BLOCKS, adapter="sometimes"),
            r"adapter must be one of \['auto', 'always', 'never'\], received: adapter='sometimes'",
        ),
        (lambda: FitNetHint(None), "pairs must be a list of"),
        (
            lambda: AttentionTransfer(BLOCKS, p=0.5),
            "p must be a finite number >= 1, received: p=0.5",
        ),
        (lambda: AttentionTransfer(BLOCKS, p="2"), "received: p='2'"),
        (lambda: AttentionTransfer(BLOCKS, p=float("inf")), "received: p=inf"),
        (
            lambda: NST(BLOCKS, kernel="gaussian"),
            r"kernel must be one of \['polynomial', 'linear'\], received: kernel='gaussian'",
        ),
        (lambda: NST(BLOCKS, degree=0), "degree must be an integer >= 1, received: degree=0"),
        (lambda: NST(BLOCKS, degree=2.5), "received: degree=2.5"),
        (
            lambda: NST(BLOCKS, constant=-1),
            "constant must be a finite number >= 0, received: constant=-1",
        ),
        (lambda: NST([("t",)]), "each entry of pairs"),
        (lambda: FSP([]), "flows must be a non-empty list"),
        (lambda: FSP([("ab", "cd")]), "flows must be a non-empty list"),
        (lambda: FSP.from_pairs(BLOCKS[:1]), "pairs must hold an even number"),
    ],
)
def test_feature_loss_rejects_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_prepared_loss_refuses_features_of_other_shapes():
    loss = FitNetHint([("t", "s")])
    loss.prepare([(None, 4, 4, 8)], [(None, 4, 4, 4)])
    loss.prepare([(32, 4, 4, 8)], [(32, 4, 4, 4)])  # another batch size is the same features
    with pytest.raises(ValueError, match="fitnet_hint was prepared for teacher shapes"):
        loss([tf.zeros((2, 4, 4, 8))], [tf.zeros((2, 4, 4, 5))])


def test_shapes_are_checked_at_the_first_call_without_prepare():
    with pytest.raises(
        ValueError,
        match=r"teacher layer 't' has shape \(2, 6\) and student layer 's' has shape \(2, 4, 4, 3",
    ):
        FitNetHint([("t", "s")])([tf.zeros((2, 6))], [tf.zeros((2, 4, 4, 3))])


# The losses on the example models' layers, and the student width each needs.
MODEL_LOSSES = {
    "fitnet": (lambda: FitNetHint(BLOCKS), 8),  # the narrow student makes both adapters
    "at": (lambda: AttentionTransfer([("t_block1", "s_block2"), ("t_block2", "s_block2")]), 8),
    "fsp": (lambda: FSP(FLOWS), 16),  # FSP matrices need the teacher's channel counts
    "nst": (lambda: NST(BLOCKS), 8),
}


class _SubclassedStudent(keras.Model):
    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.block1 = keras.layers.Conv2D(
            width, 3, padding="same", activation="relu", name="s_block1"
        )
        self.pool1 = keras.layers.MaxPooling2D(2, name="s_pool1")
        self.block2 = keras.layers.Conv2D(
            2 * width, 3, padding="same", activation="relu", name="s_block2"
        )
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.logits = keras.layers.Dense(10)

    def call_with_features(self, inputs, training=None):
        block1 = self.block1(inputs)
        pool1 = self.pool1(block1)
        block2 = self.block2(pool1)
        return self.logits(self.pool(block2)), {
            "s_block1": block1,
            "s_pool1": pool1,
            "s_block2": block2,
        }

    def call(self, inputs, training=None):
        return self.call_with_features(inputs, training=training)[0]


def _student(kind, width):
    from examples.models import make_student

    keras.utils.set_random_seed(1)
    if kind == "functional":
        return make_student((8, 8, 1), 10, width=width)
    if kind == "sequential":
        return keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="s_block1"),
                keras.layers.MaxPooling2D(2, name="s_pool1"),
                keras.layers.Conv2D(
                    2 * width, 3, padding="same", activation="relu", name="s_block2"
                ),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(10),
            ],
            name="student",
        )
    model = _SubclassedStudent(width, name="student")
    model(tf.zeros((1, 8, 8, 1)))
    return model


def _tapped(model, names, x):
    return keras.Model(model.inputs, [model.get_layer(n).output for n in names])(x)


def _loss_value(loss, distiller, x):
    teacher = _tapped(distiller.teacher, [t for t, _ in loss.pairs], x)
    student = _tapped(distiller.student, [s for _, s in loss.pairs], x)
    return float(loss(teacher, student))


@pytest.mark.parametrize("name", sorted(MODEL_LOSSES))
def test_feature_loss_save_load_round_trip_inside_a_distiller(name, digits, teacher, tmp_path):
    make, width = MODEL_LOSSES[name]
    (x, _), _ = digits
    loss = make()
    distiller = kd.Distiller(_student("functional", width), teacher, losses=[loss])
    distiller.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    restored = loaded.distillation_losses[0]
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
    assert len(restored.get_weights()) == (4 if name == "fitnet" else 0)
    assert weights_equal(restored.get_weights(), loss.get_weights())
    assert _loss_value(restored, loaded, x[:32]) == pytest.approx(
        _loss_value(loss, distiller, x[:32]), rel=1e-5
    )


SHAPE_ERRORS = {
    "unknown_teacher_layer": (
        lambda: FitNetHint([("t_block9", "s_block1")]),
        8,
        "has no layer named 't_block9'",
    ),
    "unknown_student_layer": (
        lambda: NST([("t_block1", "s_nope")]),
        8,
        "has no layer named 's_nope'",
    ),
    "fitnet_rank": (lambda: FitNetHint([("t_dense", "s_block2")]), 8, None),
    "at_rank": (lambda: AttentionTransfer([("t_dense", "s_block2")]), 8, None),
    "nst_rank": (lambda: NST([("t_dense", "s_block2")]), 8, None),
    "fsp_rank": (lambda: FSP([(("t_dense", "t_dense"), ("s_block2", "s_block2"))]), 8, None),
    "fsp_spatial": (
        lambda: FSP([(("t_block1", "t_block2"), ("s_block1", "s_block2"))]),
        8,
        r"teacher layer 't_block1' has shape \(None, 8, 8, 16\) and teacher layer 't_block2' "
        r"has shape \(None, 4, 4, 32\); the two layers of a flow must have the same spatial sizes",
    ),
    "fsp_channels": (
        lambda: FSP(FLOWS),
        8,
        r"teacher layer 't_pool1' has shape \(None, 4, 4, 16\) and student layer 's_pool1' "
        r"has shape \(None, 4, 4, 8\); teacher and student FSP matrices need the same channel",
    ),
    "fitnet_spatial": (
        lambda: FitNetHint([("t_block1", "s_block2")]),
        8,
        r"teacher layer 't_block1' has shape \(None, 8, 8, 16\) and student layer 's_block2' "
        r"has shape \(None, 4, 4, 16\); FitNetHint needs equal spatial sizes",
    ),
    "fitnet_never": (lambda: FitNetHint(BLOCKS, adapter="never"), 8, "adapter='never'"),
}
RANK_MESSAGE = (
    r"teacher layer 't_dense' has shape \(None, 128\) and student layer 's_block2' has shape "
    r"\(None, 4, 4, 16\); both features must have the same rank"
)


@pytest.mark.parametrize("name", sorted(SHAPE_ERRORS))
def test_shape_mismatch_raises_at_distiller_construction(name, teacher):
    make, width, message = SHAPE_ERRORS[name]
    with pytest.raises(ValueError, match=message or RANK_MESSAGE):
        kd.Distiller(_student("functional", width), teacher, losses=[make()])


@pytest.mark.parametrize("name", sorted(MODEL_LOSSES))
def test_gradients_reach_student_and_adapters_never_the_teacher(name, digits, teacher):
    make, width = MODEL_LOSSES[name]
    (x, _), _ = digits
    student, loss = _student("functional", width), make()
    kd.Distiller(student, teacher, losses=[loss])
    t_model = keras.Model(teacher.inputs, [teacher.get_layer(t).output for t, _ in loss.pairs])
    s_model = keras.Model(student.inputs, [student.get_layer(s).output for _, s in loss.pairs])
    with tf.GradientTape() as tape:
        value = loss(t_model(x[:32]), s_model(x[:32]))
    tapped = [
        v
        for layer in ("s_block1", "s_block2")
        for v in student.get_layer(layer).trainable_variables
    ]
    learned = tapped + list(loss.trainable_variables)
    gradients = tape.gradient(value, learned + list(teacher.trainable_variables))
    assert len(loss.trainable_variables) == (4 if name == "fitnet" else 0)
    assert all(g is not None and np.any(g.numpy() != 0) for g in gradients[: len(learned)])
    assert all(g is None for g in gradients[len(learned) :])


def _fit_and_check(kind, width, losses, digits, teacher):
    (x, y), _ = digits
    student = _student(kind, width)
    # Cached teacher features (float16) for the functional student; live (one trace less) otherwise.
    cache = "auto" if kind == "functional" else False
    distiller = kd.Distiller(student, teacher, losses=losses, cache_teacher=cache)
    distiller.compile(
        keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    teacher_before, student_before = teacher.get_weights(), student.get_weights()
    adapters_before = [w for loss in losses for w in loss.get_weights()]  # none yet if subclassed
    history = distiller.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)
    assert distiller.teacher_cached == (kind == "functional")
    assert weights_equal(teacher.get_weights(), teacher_before)
    assert not weights_equal(student.get_weights(), student_before)
    assert all(np.isfinite(history.history[loss.name][0]) for loss in losses)
    if kind == "subclassed":  # the adapters were made at the first step; train one more step
        adapters_before = [w for loss in losses for w in loss.get_weights()]
        distiller.fit(x[:64], y[:64], batch_size=64, epochs=1, verbose=0)
    adapters_after = [w for loss in losses for w in loss.get_weights()]
    assert len(adapters_after) == len(adapters_before)
    assert not any(np.array_equal(a, b) for a, b in zip(adapters_before, adapters_after))


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_one_epoch_fit_with_fitnet_at_and_nst(kind, digits, teacher):
    hint = FitNetHint(BLOCKS)
    _fit_and_check(kind, 8, [hint, AttentionTransfer(BLOCKS), NST(BLOCKS)], digits, teacher)
    assert [a.kernel.shape for a in hint.adapters] == [(1, 1, 8, 16), (1, 1, 16, 32)]


@pytest.mark.parametrize("kind", ["functional", "subclassed"])  # sequential taps like functional
def test_one_epoch_fit_with_fsp(kind, digits, teacher):
    _fit_and_check(kind, 16, [FSP(FLOWS)], digits, teacher)
