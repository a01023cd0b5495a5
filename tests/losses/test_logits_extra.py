"""Tests of DKD and MultiTeacherKD: numpy references and the properties their papers promise."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf
from keras_kd.losses.logits import LogitsKD
from keras_kd.losses.logits_extra import DKD, MultiTeacherKD
from tests.conftest import weights_equal


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _numpy_kl(log_p, log_q):
    return float(np.sum(np.exp(log_p) * (log_p - log_q)))


def _numpy_dkd(teacher, student, labels, alpha, beta, temperature):
    """Row by row in float64; the non-target distribution drops the target column outright."""
    total = 0.0
    for t_row, s_row, y in zip(teacher.astype(np.float64), student.astype(np.float64), labels):
        log_p, log_q = _log_softmax(t_row / temperature), _log_softmax(s_row / temperature)
        binary_p = [log_p[y], np.logaddexp.reduce(np.delete(log_p, y))]
        binary_q = [log_q[y], np.logaddexp.reduce(np.delete(log_q, y))]
        tckd = _numpy_kl(np.array(binary_p), np.array(binary_q))
        nckd = _numpy_kl(
            _log_softmax(np.delete(t_row, y) / temperature),
            _log_softmax(np.delete(s_row, y) / temperature),
        )
        total += alpha * tckd + beta * nckd
    return total / len(labels) * temperature**2


def _numpy_multi_teacher_kd(teachers, student, weights, temperature):
    weights = np.asarray(weights, np.float64) / np.sum(weights)
    probs = [np.exp(_log_softmax(t.astype(np.float64) / temperature)) for t in teachers]
    target = sum(w * p for w, p in zip(weights, probs))
    log_q = _log_softmax(student.astype(np.float64) / temperature)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(target > 0, target * (np.log(target) - log_q), 0.0)
    return float(np.mean(terms.sum(axis=-1)) * temperature**2)


def _sparse_ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _logits(seed, shape=(16, 10), scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


def _labels(seed, batch=16, classes=10):
    return np.random.default_rng(seed).integers(0, classes, batch).astype(np.int32)


@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize("alpha, beta", [(1.0, 8.0), (0.5, 0.0), (0.0, 2.0)])
def test_dkd_matches_numpy_reference(scale, temperature, alpha, beta):
    teacher, student, labels = _logits(0, scale=scale), _logits(1, scale=scale), _labels(2)
    value = DKD(alpha, beta, temperature)(teacher, student, labels=labels).numpy()
    assert np.isfinite(value)
    expected = _numpy_dkd(teacher, student, labels, alpha, beta, temperature)
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("row", range(6))
def test_dkd_terms_recombine_into_hinton_kd(row):
    # The paper's identity, per example: KD = TCKD + (1 - p_target_teacher) * NCKD.
    teacher, student = _logits(3 + row, (1, 7), 2.0), _logits(10 + row, (1, 7), 2.0)
    labels = _labels(20 + row, 1, 7)
    temperature = 3.0
    tckd = DKD(1.0, 0.0, temperature)(teacher, student, labels=labels).numpy()
    nckd = DKD(0.0, 1.0, temperature)(teacher, student, labels=labels).numpy()
    p_target = np.exp(_log_softmax(teacher[0].astype(np.float64) / temperature))[labels[0]]
    kd_value = LogitsKD(temperature)(teacher, student).numpy()
    np.testing.assert_allclose(tckd + (1.0 - p_target) * nckd, kd_value, rtol=1e-5)


def test_dkd_is_zero_when_student_equals_teacher():
    logits = _logits(6, scale=3.0)
    assert DKD()(logits, logits, labels=_labels(7)).numpy() == pytest.approx(0.0, abs=1e-6)


def test_dkd_is_invariant_to_a_constant_added_to_each_row_of_logits():
    teacher, student, labels = _logits(8), _logits(9), _labels(10)
    shift_t, shift_s = _logits(11, (16, 1), 50.0), _logits(12, (16, 1), 50.0)
    loss = DKD(1.0, 8.0, 2.0)
    np.testing.assert_allclose(
        loss(teacher + shift_t, student + shift_s, labels=labels).numpy(),
        loss(teacher, student, labels=labels).numpy(),
        rtol=1e-4,
    )


def test_dkd_value_and_gradient_stay_finite_for_logits_of_magnitude_1e4():
    # The worst case: a certain teacher and a student certain of another class.
    teacher = np.full((4, 10), -1e4, np.float32)
    student = np.full((4, 10), -1e4, np.float32)
    labels = np.array([0, 1, 2, 3], np.int32)
    teacher[np.arange(4), labels] = 1e4
    student[np.arange(4), (labels + 1) % 10] = 1e4
    student = tf.constant(student)
    with tf.GradientTape() as tape:
        tape.watch(student)
        value = DKD()(teacher, student, labels=labels)
    gradient = tape.gradient(value, student).numpy()
    assert np.isfinite(value.numpy()) and value.numpy() > 0
    assert np.all(np.isfinite(gradient)) and np.any(gradient != 0)
    expected = _numpy_dkd(teacher, student.numpy(), labels, 1.0, 8.0, 4.0)
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-4)


def test_multi_teacher_kd_value_and_gradient_stay_finite_for_logits_of_magnitude_1e4():
    teachers = [tf.constant(_logits(i, scale=1e4)) for i in range(3)]
    student = tf.constant(_logits(3, scale=1e4))
    with tf.GradientTape() as tape:
        tape.watch(student)
        value = MultiTeacherKD(temperature=2.0, teacher_weights=[1.0, 2.0, 3.0])(teachers, student)
    assert np.isfinite(value.numpy()) and np.all(np.isfinite(tape.gradient(value, student).numpy()))
    teachers, student = [t.numpy() for t in teachers], student.numpy()
    expected = _numpy_multi_teacher_kd(teachers, student, [1, 2, 3], 2.0)
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-4)


def _call(loss, teacher, student, labels):
    if isinstance(loss, MultiTeacherKD):
        return loss([teacher, teacher * 0.5], student)
    return loss(teacher, student, labels=labels)


@pytest.mark.parametrize("make_loss", [DKD, MultiTeacherKD], ids=["dkd", "multi_teacher_kd"])
def test_mean_over_the_batch_does_not_depend_on_the_batch_size(make_loss):
    teacher, student, labels = _logits(13), _logits(14), _labels(15)
    loss = make_loss()
    doubled = [np.concatenate([a, a]) for a in (teacher, student, labels)]
    np.testing.assert_allclose(
        _call(loss, *doubled).numpy(), _call(loss, teacher, student, labels).numpy(), rtol=1e-5
    )


@pytest.mark.parametrize("make_loss", [DKD, MultiTeacherKD], ids=["dkd", "multi_teacher_kd"])
def test_student_gets_gradients_and_teacher_none(make_loss):
    teacher, student = tf.constant(_logits(16)), tf.constant(_logits(17))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([teacher, student])
        value = _call(make_loss(), teacher, student, _labels(18))
    assert tape.gradient(value, teacher) is None
    gradient = tape.gradient(value, student).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0


@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 0.5], [0.0, 1.0, 3.0]])
def test_multi_teacher_kd_matches_numpy_reference(scale, weights):
    teachers = [_logits(20 + i, scale=scale) for i in range(3)]
    student = _logits(23, scale=scale)
    value = MultiTeacherKD(temperature=4.0, teacher_weights=weights)(teachers, student).numpy()
    expected = _numpy_multi_teacher_kd(teachers, student, weights or [1, 1, 1], 4.0)
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("count", [1, 3])
def test_multi_teacher_kd_with_identical_teachers_is_logits_kd(count):
    teacher, student = _logits(24), _logits(25)
    value = MultiTeacherKD(temperature=3.0)([teacher] * count, student).numpy()
    np.testing.assert_allclose(value, LogitsKD(3.0)(teacher, student).numpy(), rtol=1e-5)


def test_multi_teacher_kd_normalizes_weights_and_ignores_zero_weight_teachers():
    teachers, student = [_logits(26), _logits(27), _logits(28) * 1e6], _logits(29)
    weighted = MultiTeacherKD(teacher_weights=[1.0, 3.0, 0.0])(teachers, student).numpy()
    scaled = MultiTeacherKD(teacher_weights=[2.0, 6.0])(teachers[:2], student).numpy()
    np.testing.assert_allclose(weighted, scaled, rtol=1e-6)
    assert weighted != pytest.approx(MultiTeacherKD()(teachers[:2], student).numpy(), rel=1e-3)


def test_multi_teacher_kd_is_zero_at_its_minimum():
    # The minimum is a student whose softened distribution equals the averaged target.
    teachers, temperature = [_logits(30), _logits(31)], 2.0
    target = sum(np.exp(_log_softmax(t.astype(np.float64) / temperature)) for t in teachers) / 2
    student = (temperature * np.log(target)).astype(np.float32)
    value = MultiTeacherKD(temperature)(teachers, student).numpy()
    assert value == pytest.approx(0.0, abs=1e-5)
    assert MultiTeacherKD(temperature)(teachers, student + _logits(32) * 0.1).numpy() > value


def test_multi_teacher_kd_is_invariant_to_a_constant_added_to_any_logits():
    teachers, student = [_logits(33), _logits(34)], _logits(35)
    loss = MultiTeacherKD(teacher_weights=[1.0, 2.0])
    shifted = loss([teachers[0] + 9.0, teachers[1] - 4.0], student + 100.0).numpy()
    np.testing.assert_allclose(shifted, loss(teachers, student).numpy(), rtol=1e-4)


@pytest.mark.parametrize(
    "loss",
    [
        DKD(alpha=0.5, beta=2.0, temperature=3.0, name="decoupled"),
        MultiTeacherKD(2.0, [1.0, 3.0], name="ensemble"),
    ],
    ids=["dkd", "multi_teacher_kd"],
)
def test_config_round_trip(loss):
    config = loss.get_config()
    assert "pairs" not in config
    serialized = keras.saving.serialize_keras_object(loss)
    deserialized = keras.saving.deserialize_keras_object(serialized)
    for restored in (type(loss).from_config(config), deserialized):
        assert type(restored) is type(loss) and restored.get_config() == config


def test_class_attributes_and_default_names():
    assert DKD.uses_labels and not MultiTeacherKD.uses_labels
    assert MultiTeacherKD.multi_teacher and not getattr(DKD, "multi_teacher", False)
    assert (DKD().name, MultiTeacherKD().name) == ("dkd", "multi_teacher_kd")


def test_dkd_save_load_round_trip_inside_a_distiller(tmp_path, teacher, student):
    distiller = kd.Distiller(student, teacher, losses=[DKD(alpha=2.0, beta=4.0, temperature=3.0)])
    distiller.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras").distillation_losses[0]
    assert isinstance(loaded, DKD)
    assert (loaded.alpha, loaded.beta, loaded.temperature) == (2.0, 4.0, 3.0)


def test_dkd_trains_a_student_for_one_epoch_and_leaves_the_teacher_alone(digits, teacher, student):
    (x, y), _ = digits
    teacher_before, student_before = teacher.get_weights(), student.get_weights()
    distiller = kd.Distiller(student, teacher, losses=[DKD()], alpha=0.1)
    distiller.compile(keras.optimizers.Adam(3e-3), _sparse_ce())
    history = distiller.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["dkd"][0]) and history.history["dkd"][0] > 0
    assert weights_equal(teacher.get_weights(), teacher_before)
    assert not weights_equal(student.get_weights(), student_before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": -1.0}, "alpha must be a finite number >= 0, received: alpha=-1.0"),
        ({"beta": float("nan")}, "beta must be a finite number >= 0"),
        ({"beta": "8"}, "beta must be a finite number >= 0"),
        ({"alpha": 0, "beta": 0}, "alpha and beta must not both be 0"),
        ({"temperature": 0}, "temperature must be > 0"),
    ],
)
def test_dkd_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DKD(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"teacher_weights": [1.0, -0.5]},
        {"teacher_weights": [1.0, float("inf")]},
        {"teacher_weights": [0.0, 0.0]},
        {"teacher_weights": []},
        {"teacher_weights": 2.0},
        {"teacher_weights": "12"},
        {"teacher_weights": [True, 1.0]},
    ],
)
def test_multi_teacher_kd_rejects_bad_teacher_weights(kwargs):
    with pytest.raises(ValueError, match="teacher_weights must be a list of finite numbers >= 0"):
        MultiTeacherKD(**kwargs)


def test_multi_teacher_kd_rejects_a_teacher_count_other_than_the_weight_count():
    loss = MultiTeacherKD(teacher_weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"teacher_weights has 3 weights .* but 2 teachers were"):
        loss([_logits(36), _logits(37)], _logits(38))
    with pytest.raises(ValueError, match="teachers must be a non-empty list"):
        MultiTeacherKD()(_logits(36), _logits(38))


@pytest.mark.parametrize("make_loss", [DKD, MultiTeacherKD], ids=["dkd", "multi_teacher_kd"])
def test_class_count_mismatch_names_both_shapes(make_loss):
    message = r"teacher logits have shape \(16, 10\) but student logits have shape \(16, 7\)"
    with pytest.raises(ValueError, match=message):
        _call(make_loss(), _logits(39), _logits(40, (16, 7)), _labels(41))


def test_dkd_refuses_missing_mis_sized_or_out_of_range_labels():
    teacher, student = _logits(42), _logits(43)
    with pytest.raises(ValueError, match="DKD needs labels="):
        DKD()(teacher, student)
    with pytest.raises(ValueError, match=r"labels have shape \(8,\) but the logits have shape"):
        DKD()(teacher, student, labels=_labels(44, 8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be < class count"):
        DKD()(teacher, student, labels=np.full(16, 10, np.int32))
