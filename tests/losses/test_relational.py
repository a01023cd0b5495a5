"""Tests of the relational losses (RKD, SimilarityPreserving, PKT, CorrelationCongruence)."""

import math

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf
from keras_kd.losses.relational import PKT, RKD, CorrelationCongruence, SimilarityPreserving
from tests.conftest import weights_equal

PAIRS = [("t_dense", "s_global_pool")]


def _numpy_rkd(teacher, student, distance_weight=25.0, angle_weight=50.0):
    """As in the authors' PyTorch code (distances by the Gram expansion, angles by differences), except
    that duplicated examples (distance at the 1e-6 floor) are left out of the mean distance."""

    def distances(e):
        squared = (e**2).sum(axis=1)
        d = np.sqrt(np.clip(squared[:, None] + squared[None, :] - 2 * e @ e.T, 1e-12, None))
        np.fill_diagonal(d, 0.0)
        return d / d[d > 1e-6].mean()

    def angles(e):
        diff = e[None, :, :] - e[:, None, :]
        unit = diff / np.maximum(np.linalg.norm(diff, axis=2, keepdims=True), 1e-12)
        return np.einsum("ijd,ikd->ijk", unit, unit)

    def huber(a, b):
        x = np.abs(a - b)
        return np.mean(np.where(x < 1, 0.5 * x * x, x - 0.5))

    return distance_weight * huber(distances(student), distances(teacher)) + angle_weight * huber(
        angles(student), angles(teacher)
    )


def _numpy_sp(teacher, student):
    def similarity(q):
        g = q @ q.T
        return g / np.linalg.norm(g, axis=1, keepdims=True)

    return np.sum((similarity(teacher) - similarity(student)) ** 2) / len(teacher) ** 2


def _numpy_pkt(teacher, student, eps=1e-7):
    def conditional(x):
        x = x / (np.linalg.norm(x, axis=1, keepdims=True) + eps)
        k = (x @ x.T + 1.0) / 2.0
        return k / k.sum(axis=1, keepdims=True)

    p, q = conditional(teacher), conditional(student)
    return np.mean(np.sum(p * np.log((p + eps) / (q + eps)), axis=1))


def _numpy_cc(teacher, student, gamma=0.4, order=2):
    def correlation(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        c = x @ x.T
        series = sum((2 * gamma) ** p / math.factorial(p) * c**p for p in range(order + 1))
        return np.exp(-2 * gamma) * series

    return np.sum((correlation(teacher) - correlation(student)) ** 2) / len(teacher) ** 2


LOSSES = {
    "rkd": (RKD, _numpy_rkd),
    "sp": (SimilarityPreserving, _numpy_sp),
    "pkt": (PKT, _numpy_pkt),
    "cc": (CorrelationCongruence, _numpy_cc),
}
NAMES = sorted(LOSSES)


def _features(seed, shape, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


def _flat64(x):
    return x.reshape(len(x), -1).astype(np.float64)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "t_shape, s_shape", [((12, 10), (12, 10)), ((12, 32), (12, 5)), ((12, 4, 4, 3), (12, 2, 2, 8))]
)
def test_matches_numpy_reference(name, t_shape, s_shape):
    make_loss, reference = LOSSES[name]
    teacher, student = _features(0, t_shape), _features(1, s_shape)
    on_logits = make_loss()(teacher, student).numpy()
    on_pair = make_loss(pairs=[("t", "s")])([teacher], [student]).numpy()
    expected = reference(_flat64(teacher), _flat64(student))
    np.testing.assert_allclose([on_logits, on_pair], [expected, expected], rtol=2e-4, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_is_zero_when_student_equals_teacher(name):
    features = _features(2, (12, 16), 3.0)
    assert LOSSES[name][0]()(features, features).numpy() == pytest.approx(0.0, abs=1e-6)


def _orthogonal(seed, width):
    matrix = np.random.default_rng(seed).normal(size=(width, width))
    return np.linalg.qr(matrix)[0].astype(np.float32)


# What each loss's math promises, applied to teacher and student independently.
TRANSFORMS = {
    "scale": lambda x, seed: x * np.float32(0.1 + 5 * seed),
    "translation": lambda x, seed: x + _features(seed, (1, x.shape[1]), 10.0),
    "rotation": lambda x, seed: x @ _orthogonal(seed, x.shape[1]),
    "per_example_scale": lambda x, seed: x * (np.abs(_features(seed, (len(x), 1), 3.0)) + 0.1),
}
INVARIANCES = [
    ("rkd", "scale"),
    ("rkd", "translation"),
    ("rkd", "rotation"),
    ("sp", "scale"),
    ("sp", "rotation"),
    ("pkt", "per_example_scale"),
    ("pkt", "rotation"),
    ("cc", "per_example_scale"),
    ("cc", "rotation"),
]


@pytest.mark.parametrize("name, transform", INVARIANCES)
def test_is_invariant_to_what_its_math_promises(name, transform):
    teacher, student = _features(3, (12, 16)), _features(4, (12, 6))
    loss = LOSSES[name][0]()
    original = loss(teacher, student).numpy()
    transformed = loss(TRANSFORMS[transform](teacher, 5), TRANSFORMS[transform](student, 6)).numpy()
    assert original > 1e-4
    np.testing.assert_allclose(transformed, original, rtol=2e-4)


@pytest.mark.parametrize("name", ["sp", "pkt", "cc"])
def test_is_not_invariant_to_translation_as_documented(name):
    teacher, student = _features(3, (12, 16)), _features(4, (12, 6))
    loss = LOSSES[name][0]()
    moved = loss(TRANSFORMS["translation"](teacher, 5), student).numpy()
    assert moved != pytest.approx(loss(teacher, student).numpy(), rel=1e-2)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("t_scale, s_scale", [(1e4, 1e4), (1e3, 1e-3)])
def test_value_and_gradient_stay_finite_for_large_inputs_and_duplicates(name, t_scale, s_scale):
    teacher = _features(5, (12, 64), t_scale)
    student = _features(6, (12, 10), s_scale)
    student[1] = student[0]  # a duplicated example: zero distance, the edge case of sqrt
    student = tf.constant(student)
    with tf.GradientTape() as tape:
        tape.watch(student)
        value = LOSSES[name][0]()(teacher, student)
    gradient = tape.gradient(value, student).numpy()
    assert np.isfinite(value.numpy()) and np.all(np.isfinite(gradient))
    expected = LOSSES[name][1](_flat64(teacher), _flat64(student.numpy()))
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_of_one_gives_zero_and_a_finite_gradient(name):
    student = tf.constant(_features(7, (1, 10)))
    with tf.GradientTape() as tape:
        tape.watch(student)
        value = LOSSES[name][0]()(_features(8, (1, 32)), student)
    assert value.numpy() == pytest.approx(0.0, abs=1e-7)
    assert np.all(np.isfinite(tape.gradient(value, student).numpy()))


@pytest.mark.parametrize("name, ratio", [("pkt", 1.0), ("cc", 1.0), ("sp", 0.5)])
def test_repeating_the_batch_keeps_the_mean_or_halves_sp_as_documented(name, ratio):
    teacher, student = _features(9, (12, 16)), _features(10, (12, 6))
    loss = LOSSES[name][0]()
    doubled = loss(np.concatenate([teacher, teacher]), np.concatenate([student, student])).numpy()
    np.testing.assert_allclose(doubled, ratio * loss(teacher, student).numpy(), rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_several_pairs_give_the_mean_over_pairs(name):
    make_loss = LOSSES[name][0]
    teachers = [_features(11, (8, 20)), _features(12, (8, 3, 3, 2))]
    students = [_features(13, (8, 4)), _features(14, (8, 7))]
    both = make_loss(pairs=[("t1", "s1"), ("t2", "s2")])(teachers, students).numpy()
    singles = [make_loss()(t, s).numpy() for t, s in zip(teachers, students)]
    np.testing.assert_allclose(both, np.mean(singles), rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_student_gets_gradients_and_teacher_none(name):
    teacher, student = tf.constant(_features(15, (8, 20))), tf.constant(_features(16, (8, 5)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([teacher, student])
        value = LOSSES[name][0](pairs=[("t", "s")])([teacher], [student])
    assert tape.gradient(value, teacher) is None
    gradient = tape.gradient(value, student).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0


CONFIGURED = {
    "rkd": lambda: RKD(distance_weight=1.0, angle_weight=2.0, pairs=PAIRS, name="relations"),
    "sp": lambda: SimilarityPreserving(pairs=PAIRS, name="similarity"),
    "pkt": lambda: PKT(eps=1e-5, pairs=PAIRS, name="probabilities"),
    "cc": lambda: CorrelationCongruence(gamma=0.5, order=3, pairs=PAIRS, name="correlation"),
}


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    loss = CONFIGURED[name]()
    config = loss.get_config()
    assert config["pairs"] == PAIRS
    serialized = keras.saving.serialize_keras_object(loss)
    deserialized = keras.saving.deserialize_keras_object(serialized)
    for restored in (type(loss).from_config(config), deserialized):
        assert type(restored) is type(loss) and restored.get_config() == config


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_inside_a_distiller(name, tmp_path, teacher, student):
    loss = CONFIGURED[name]()
    kd.Distiller(student, teacher, losses=[loss]).save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras").distillation_losses[0]
    assert type(loaded) is type(loss) and loaded.get_config() == loss.get_config()


def test_default_names():
    names = [make_loss().name for make_loss, _ in LOSSES.values()]
    assert names == ["rkd", "similarity_preserving", "pkt", "correlation_congruence"]


@pytest.mark.parametrize("pairs", [None, PAIRS], ids=["logits", "features"])
@pytest.mark.parametrize("name", NAMES)
def test_one_epoch_of_fit_trains_the_student_only(name, pairs, digits, teacher, student):
    (x, _), _ = digits
    loss = LOSSES[name][0](pairs=pairs)
    teacher_before, student_before = teacher.get_weights(), student.get_weights()
    # alpha=0: the relational loss alone must move the student.
    distiller = kd.Distiller(student, teacher, losses=[loss], alpha=0.0)
    distiller.compile(keras.optimizers.Adam(3e-3))
    history = distiller.fit(x[:64], batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history[loss.name][0])
    assert weights_equal(teacher.get_weights(), teacher_before)
    assert not weights_equal(student.get_weights(), student_before)


@pytest.mark.parametrize(
    "make_loss, message",
    [
        (lambda: RKD(distance_weight=-1.0), "distance_weight must be a finite number >= 0"),
        (lambda: RKD(angle_weight=float("nan")), "angle_weight must be a finite number >= 0"),
        (lambda: RKD(0.0, 0.0), "distance_weight and angle_weight must not both be 0"),
        (lambda: PKT(eps=0.0), "eps must be > 0, received: eps=0.0"),
        (lambda: PKT(eps=float("inf")), "eps must be > 0"),
        (lambda: PKT(eps="small"), "eps must be a number > 0"),
        (lambda: CorrelationCongruence(gamma=-0.4), "gamma must be > 0"),
        (lambda: CorrelationCongruence(order=0), "integer >= 1, received: order=0"),
        (lambda: CorrelationCongruence(order=1.5), "order must be an integer >= 1"),
        (lambda: CorrelationCongruence(order=True), "order must be an integer >= 1"),
        (lambda: SimilarityPreserving(pairs=[]), "pairs must name at least one"),
        (lambda: SimilarityPreserving(pairs=[("t_dense",)]), "each entry of pairs must be"),
    ],
)
def test_bad_arguments_raise(make_loss, message):
    with pytest.raises(ValueError, match=message):
        make_loss()


@pytest.mark.parametrize("name", NAMES)
def test_mismatched_batch_sizes_and_pair_counts_are_named(name):
    make_loss = LOSSES[name][0]
    message = r"t_dense has shape \(8, 20\) but s_global_pool has shape \(6, 5\)"
    with pytest.raises(ValueError, match=message):
        make_loss(pairs=PAIRS)([_features(17, (8, 20))], [_features(18, (6, 5))])
    with pytest.raises(ValueError, match="names 1 pairs but received 2 teacher and 2 student"):
        make_loss(pairs=PAIRS)([_features(17, (8, 20))] * 2, [_features(18, (8, 5))] * 2)
