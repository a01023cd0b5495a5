"""Tests of keras_kd.losses.DIST against a numpy reference and the properties its math promises."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf
from keras_kd.losses import DIST
from tests.conftest import weights_equal


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def _numpy_pearson_rows(a, b, eps=1e-8):
    """The official code's form: cosine similarity of the centered rows, eps added to the norms."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + eps)


def _numpy_dist(teacher, student, beta, gamma, temperature):
    p_t = _softmax(teacher.astype(np.float64) / temperature)
    p_s = _softmax(student.astype(np.float64) / temperature)
    inter = 1.0 - _numpy_pearson_rows(p_s, p_t).mean()
    intra = 1.0 - _numpy_pearson_rows(p_s.T, p_t.T).mean()
    return temperature**2 * (beta * inter + gamma * intra)


def _logits(seed, shape=(16, 10), scale=3.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


@pytest.mark.parametrize("scale", [1.0, 10.0])
@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize("beta, gamma", [(1.0, 1.0), (2.0, 0.5), (1.0, 0.0), (0.0, 1.0)])
def test_dist_matches_numpy_reference(scale, temperature, beta, gamma):
    teacher, student = _logits(0, scale=scale), _logits(1, scale=scale)
    value = DIST(beta, gamma, temperature)(teacher, student).numpy()
    expected = _numpy_dist(teacher, student, beta, gamma, temperature)
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-6)


def test_dist_is_zero_when_student_equals_teacher():
    logits = _logits(2)
    assert DIST()(logits, logits).numpy() == pytest.approx(0.0, abs=1e-5)
    assert DIST(temperature=4.0)(logits, logits).numpy() == pytest.approx(0.0, abs=1e-4)
    assert DIST()(logits, _logits(3)).numpy() > 0.1


def test_dist_is_symmetric_in_teacher_and_student():
    teacher, student = _logits(4), _logits(5)
    loss = DIST(beta=1.0, gamma=2.0, temperature=2.0)
    np.testing.assert_allclose(loss(teacher, student).numpy(), loss(student, teacher).numpy())


def _shift_each_row(teacher, student, rng):
    shift = rng.uniform(-20, 20, (2, teacher.shape[0], 1))
    return teacher + shift[0], student + shift[1]


def _permute_classes(teacher, student, rng):
    order = rng.permutation(teacher.shape[1])
    return teacher[:, order], student[:, order]


def _permute_examples(teacher, student, rng):
    order = rng.permutation(teacher.shape[0])
    return teacher[order], student[order]


@pytest.mark.parametrize(
    "transform",
    [_shift_each_row, _permute_classes, _permute_examples],
    ids=["constant_added_to_each_row", "same_class_permutation", "same_example_permutation"],
)
def test_dist_is_invariant_to_what_its_math_promises(transform):
    teacher, student = _logits(6), _logits(7)
    loss = DIST(beta=1.0, gamma=1.0, temperature=2.0)
    moved = [a.astype(np.float32) for a in transform(teacher, student, np.random.default_rng(8))]
    np.testing.assert_allclose(
        loss(*moved).numpy(), loss(teacher, student).numpy(), rtol=1e-4, atol=1e-6
    )


def test_dist_depends_on_the_scale_of_the_logits_unlike_standardized_kd():
    teacher, student = _logits(9), _logits(10)
    assert DIST()(teacher, 3.0 * student).numpy() != pytest.approx(
        DIST()(teacher, student).numpy(), rel=1e-2
    )


def test_dist_stays_within_its_bounds_and_grows_when_the_student_ranks_classes_backwards():
    teacher = _logits(11)
    loss = DIST(beta=1.0, gamma=1.0, temperature=2.0)
    backwards = loss(teacher, -teacher).numpy()
    assert loss(teacher, _logits(12)).numpy() < backwards <= 2 * 4.0 * 2.0


def test_dist_batch_of_one_has_a_constant_intra_class_term_as_documented():
    teacher, student = _logits(13, (1, 10)), _logits(14, (1, 10))
    inter_only = DIST(beta=1.0, gamma=0.0, temperature=2.0)(teacher, student).numpy()
    both = DIST(beta=1.0, gamma=3.0, temperature=2.0)(teacher, student).numpy()
    np.testing.assert_allclose(both - inter_only, 3.0 * 4.0, rtol=1e-6)


@pytest.mark.parametrize(
    "teacher, student",
    [
        (_logits(15, scale=1e4), _logits(16, scale=1e4)),
        (_logits(17), np.zeros((16, 10), np.float32)),  # a constant student row and column
        (np.zeros((16, 10), np.float32), np.zeros((16, 10), np.float32)),
    ],
    ids=["logits_of_magnitude_1e4", "constant_student", "both_constant"],
)
def test_dist_value_and_gradient_stay_finite(teacher, student):
    teacher, student = tf.constant(teacher), tf.constant(student)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([teacher, student])
        value = DIST()(teacher, student)
    assert np.isfinite(value.numpy()) and value.numpy() >= 0
    assert tape.gradient(value, teacher) is None
    assert np.all(np.isfinite(tape.gradient(value, student).numpy()))


def test_dist_gives_the_student_a_gradient_that_lowers_the_loss():
    teacher, student = tf.constant(_logits(18)), tf.Variable(_logits(19))
    loss = DIST(temperature=2.0)
    before = loss(teacher, student).numpy()
    for _ in range(5):
        with tf.GradientTape() as tape:
            value = loss(teacher, student)
        student.assign_sub(0.5 * tape.gradient(value, student))
    assert loss(teacher, student).numpy() < before


def test_dist_config_round_trip_and_registry_name():
    loss = DIST(beta=2.0, gamma=0.5, temperature=4.0, name="stronger")
    config = loss.get_config()
    assert "pairs" not in config
    assert {k: config[k] for k in ("beta", "gamma", "temperature", "name")} == {
        "beta": 2.0,
        "gamma": 0.5,
        "temperature": 4.0,
        "name": "stronger",
    }
    deserialized = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    for restored in (DIST.from_config(config), deserialized):
        assert type(restored) is DIST and restored.get_config() == config
    made = kd.losses.get("dist", beta=3.0)
    assert type(made) is DIST and (made.beta, made.gamma, made.temperature) == (3.0, 1.0, 1.0)
    assert made.name == "dist" and made.pairs is None and not made.uses_labels


def test_dist_save_load_round_trip_inside_a_distiller(tmp_path, teacher, student):
    distiller = kd.Distiller(student, teacher, losses=[DIST(beta=2.0, gamma=0.5, temperature=4.0)])
    distiller.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras").distillation_losses[0]
    assert isinstance(loaded, DIST)
    assert (loaded.beta, loaded.gamma, loaded.temperature) == (2.0, 0.5, 4.0)


def test_dist_trains_a_student_for_one_epoch_and_leaves_the_teacher_alone(digits, teacher, student):
    (x, y), _ = digits
    teacher_before, student_before = teacher.get_weights(), student.get_weights()
    distiller = kd.Distiller(student, teacher, losses=[kd.losses.get("dist")], alpha=0.5)
    distiller.compile(
        keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = distiller.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["dist"][0]) and history.history["dist"][0] > 0
    assert weights_equal(teacher.get_weights(), teacher_before)
    assert not weights_equal(student.get_weights(), student_before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": -1.0}, r"beta must be a finite number >= 0, received: beta=-1.0"),
        ({"gamma": float("nan")}, r"gamma must be a finite number >= 0, received: gamma=nan"),
        ({"gamma": "1"}, r"gamma must be a finite number >= 0, received: gamma='1'"),
        ({"beta": 0, "gamma": 0.0}, r"beta and gamma must not both be 0, received: beta=0"),
        ({"temperature": 0}, r"temperature must be > 0, received: temperature=0"),
        ({"temperature": -2.0}, r"temperature must be > 0, received: temperature=-2.0"),
        ({"temperature": "hot"}, r"temperature must be a number > 0, received: temperature='hot'"),
    ],
)
def test_dist_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DIST(**kwargs)


@pytest.mark.parametrize(
    "t_shape, s_shape, message",
    [
        ((16, 10), (16, 7), r"teacher logits have shape \(16, 10\) but student logits have shape"),
        ((16, 10), (8, 10), r"teacher logits have shape \(16, 10\) but student logits have shape"),
        ((4, 3, 10), (4, 3, 10), r"teacher logits must have shape \(batch, classes\)"),
    ],
    ids=["classes", "batch", "rank"],
)
def test_dist_shape_mismatch_names_the_shapes(t_shape, s_shape, message):
    with pytest.raises(ValueError, match=message):
        DIST()(tf.zeros(t_shape), tf.zeros(s_shape))


def test_defaults_are_dist_at_t4_for_one_teacher_and_multi_kd_for_several():
    (loss,), alpha = kd.losses.defaults()
    assert isinstance(loss, kd.losses.DIST) and alpha == 0.5
    assert (loss.beta, loss.gamma, loss.temperature) == (2.0, 2.0, 4.0)
    (multi,), multi_alpha = kd.losses.defaults(2)
    assert isinstance(multi, kd.losses.MultiTeacherKD) and multi_alpha == 0.1


@pytest.mark.parametrize("count", [0, 1.5, True])
def test_defaults_reject_a_bad_teacher_count(count):
    with pytest.raises(ValueError, match=f"received: num_teachers={count!r}"):
        kd.losses.defaults(count)
