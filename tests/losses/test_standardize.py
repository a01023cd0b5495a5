"""Tests of logit standardization (Sun et al. 2024): ``standardize=True`` on the KD logit losses."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf
from keras_kd.losses import DKD, LogitsKD, MultiTeacherKD, _ops
from tests.losses.test_logits import _numpy_kd
from tests.losses.test_logits_extra import _numpy_dkd, _numpy_multi_teacher_kd

LOSSES = [LogitsKD, DKD, MultiTeacherKD]
IDS = ["kd", "dkd", "multi_kd"]


def _numpy_zscore(z):
    z = z.astype(np.float64)
    centered = z - z.mean(axis=-1, keepdims=True)
    return centered / (centered.std(axis=-1, keepdims=True) + 1e-7)  # population std (ddof=0)


def _logits(seed, shape=(16, 10), scale=3.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


LABELS = np.random.default_rng(99).integers(0, 10, 16).astype(np.int32)


def _call(loss, teacher, student):
    """Calls any of LOSSES; MultiTeacherKD gets the teacher and a second, fixed teacher."""
    if isinstance(loss, MultiTeacherKD):
        return loss([teacher, _logits(98)], student).numpy()
    if isinstance(loss, DKD):
        return loss(teacher, student, labels=LABELS).numpy()
    return loss(teacher, student).numpy()


def _numpy_reference(make_loss, teacher, student, temperature):
    t, s = _numpy_zscore(teacher), _numpy_zscore(student)
    if make_loss is LogitsKD:
        return _numpy_kd(t, s, temperature)
    if make_loss is DKD:
        return _numpy_dkd(t, s, LABELS, 1.0, 8.0, temperature)
    return _numpy_multi_teacher_kd([t, _numpy_zscore(_logits(98))], s, [1, 1], temperature)


@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("make_loss", LOSSES, ids=IDS)
def test_standardized_loss_matches_numpy_reference(make_loss, temperature, scale):
    teacher, student = _logits(0, scale=scale), _logits(1, scale=scale)
    value = _call(make_loss(temperature=temperature, standardize=True), teacher, student)
    expected = _numpy_reference(make_loss, teacher, student, temperature)
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-6)


def test_zscore_gives_rows_of_mean_0_and_std_1_and_zeros_for_a_constant_row():
    logits = np.concatenate([_logits(2, (3, 10), 50.0), np.full((1, 10), 7.0, np.float32)])
    z = _ops.zscore(tf.constant(logits)).numpy()
    np.testing.assert_allclose(z[:3].mean(axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:3].std(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(z[3], 0.0)
    np.testing.assert_allclose(z, _numpy_zscore(logits), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("side", ["teacher", "student"])
@pytest.mark.parametrize("make_loss", LOSSES, ids=IDS)
def test_standardized_loss_ignores_a_positive_scale_and_a_shift_of_either_model(make_loss, side):
    teacher, student = _logits(3), _logits(4)
    loss = make_loss(temperature=2.0, standardize=True)
    before = _call(loss, teacher, student)
    rng = np.random.default_rng(5)
    for a, b in [(0.1, 0.0), (7.0, -30.0), (1.0, 100.0)]:
        # One scale for all rows, then a different positive scale and shift for each row.
        rows_a = rng.uniform(0.2, 5.0, (16, 1)).astype(np.float32)
        rows_b = rng.uniform(-10, 10, (16, 1)).astype(np.float32)
        for scale, shift in [(a, b), (a * rows_a, b + rows_b)]:
            moved = (
                (scale * teacher + shift, student)
                if side == "teacher"
                else (teacher, scale * student + shift)
            )
            np.testing.assert_allclose(_call(loss, *moved), before, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("make_loss", LOSSES, ids=IDS)
def test_without_standardize_the_scale_of_the_logits_matters(make_loss):
    teacher, student = _logits(6), _logits(7)
    loss = make_loss(temperature=2.0)
    assert _call(loss, 3.0 * teacher, student) != pytest.approx(
        _call(loss, teacher, student), rel=1e-2
    )


@pytest.mark.parametrize("make_loss", LOSSES, ids=IDS)
def test_standardized_loss_is_zero_when_the_student_is_an_affine_copy_of_the_teacher(make_loss):
    teacher = _logits(8)
    loss = make_loss(temperature=2.0, standardize=True)
    if make_loss is MultiTeacherKD:
        value = loss([teacher, 5.0 * teacher - 2.0], 0.3 * teacher + 4.0).numpy()
    else:
        value = _call(loss, teacher, 0.3 * teacher + 4.0)
    assert value == pytest.approx(0.0, abs=1e-5)
    assert _call(loss, teacher, _logits(9)) > 0.01


def test_standardized_kd_keeps_the_temperature_squared_factor():
    teacher, student = _logits(10), _logits(11)
    kl = _ops.softened_kl(
        tf.constant(_numpy_zscore(teacher), tf.float32),
        tf.constant(_numpy_zscore(student), tf.float32),
        3.0,
    )
    value = LogitsKD(temperature=3.0, standardize=True)(teacher, student).numpy()
    np.testing.assert_allclose(value, 9.0 * tf.reduce_mean(kl).numpy(), rtol=1e-5)


@pytest.mark.parametrize(
    "teacher, student",
    [
        (_logits(12, scale=1e4), _logits(13, scale=1e4)),
        (_logits(14), np.full((16, 10), 2.0, np.float32)),  # a constant student row
        (np.zeros((16, 10), np.float32), np.zeros((16, 10), np.float32)),
    ],
    ids=["logits_of_magnitude_1e4", "constant_student", "both_constant"],
)
@pytest.mark.parametrize("make_loss", LOSSES, ids=IDS)
def test_standardized_value_and_gradient_stay_finite(make_loss, teacher, student):
    student = tf.constant(student)
    with tf.GradientTape() as tape:
        tape.watch(student)
        loss = make_loss(standardize=True)
        if make_loss is MultiTeacherKD:
            value = loss([tf.constant(teacher), tf.constant(teacher)], student)
        elif make_loss is DKD:
            value = loss(tf.constant(teacher), student, labels=LABELS)
        else:
            value = loss(tf.constant(teacher), student)
    assert np.isfinite(value.numpy()) and value.numpy() >= -1e-6
    assert np.all(np.isfinite(tape.gradient(value, student).numpy()))


@pytest.mark.parametrize(
    "loss",
    [
        LogitsKD(temperature=2.0, standardize=True, name="lskd"),
        DKD(alpha=1.0, beta=2.0, temperature=2.0, standardize=True),
        MultiTeacherKD(temperature=2.0, teacher_weights=[1.0, 2.0], standardize=True),
    ],
    ids=IDS,
)
def test_standardize_is_in_the_config_and_survives_a_round_trip(loss):
    config = loss.get_config()
    assert config["standardize"] is True and config["temperature"] == 2.0
    deserialized = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    for restored in (type(loss).from_config(config), deserialized):
        assert type(restored) is type(loss) and restored.get_config() == config
        assert restored.standardize is True


@pytest.mark.parametrize("name", IDS)
def test_standardize_defaults_to_false_and_is_reachable_by_registry_name(name):
    assert kd.losses.get(name).standardize is False
    assert kd.losses.get(name, standardize=True).standardize is True


@pytest.mark.parametrize("make_loss", [LogitsKD, DKD], ids=["kd", "dkd"])
def test_standardized_loss_save_load_round_trip_inside_a_distiller(
    make_loss, tmp_path, teacher, student
):
    distiller = kd.Distiller(
        student, teacher, losses=[make_loss(temperature=2.0, standardize=True)]
    )
    distiller.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras").distillation_losses[0]
    assert type(loaded) is make_loss
    assert (loaded.standardize, loaded.temperature) == (True, 2.0)


@pytest.mark.parametrize("value", ["yes", 1, None, 0.0])
@pytest.mark.parametrize("make_loss", LOSSES, ids=IDS)
def test_standardize_must_be_a_bool(make_loss, value):
    with pytest.raises(
        ValueError, match=rf"standardize must be True or False, received: standardize={value!r}"
    ):
        make_loss(standardize=value)


@pytest.mark.parametrize("make_loss", LOSSES, ids=IDS)
def test_standardized_loss_rejects_temperature_0(make_loss):
    with pytest.raises(ValueError, match=r"temperature must be > 0, received: temperature=0"):
        make_loss(temperature=0, standardize=True)


@pytest.mark.parametrize("make_loss", LOSSES, ids=IDS)
def test_standardized_loss_class_count_mismatch_names_both_shapes(make_loss):
    message = r"teacher logits have shape \(16, 10\) but student logits have shape \(16, 7\)"
    with pytest.raises(ValueError, match=message):
        _call(make_loss(standardize=True), _logits(15), _logits(16, (16, 7)))
