"""Tests of keras_kd.losses.LogitsKD against a numpy reference and its promised properties."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf


def _numpy_kd(teacher, student, temperature):
    def log_softmax(z):
        z = z / temperature
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    log_p, log_q = log_softmax(teacher.astype(np.float64)), log_softmax(student.astype(np.float64))
    return float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1)) * temperature**2)


@pytest.mark.parametrize("scale", [1.0, 1e4])
@pytest.mark.parametrize("temperature", [1.0, 4.0, 20.0])
def test_logits_kd_matches_numpy_reference(temperature, scale):
    rng = np.random.default_rng(0)
    teacher = (rng.normal(size=(16, 10)) * scale).astype(np.float32)
    student = (rng.normal(size=(16, 10)) * scale).astype(np.float32)
    value = kd.losses.LogitsKD(temperature)(tf.constant(teacher), tf.constant(student)).numpy()
    assert np.isfinite(value)
    np.testing.assert_allclose(value, _numpy_kd(teacher, student, temperature), rtol=1e-4)


def test_logits_kd_is_zero_when_student_equals_teacher():
    logits = tf.random.normal((8, 5)) * 3
    assert kd.losses.LogitsKD(4.0)(logits, logits).numpy() == pytest.approx(0.0, abs=1e-6)


def test_logits_kd_is_invariant_to_a_constant_added_to_the_logits():
    teacher, student = tf.random.normal((8, 5)), tf.random.normal((8, 5))
    loss = kd.losses.LogitsKD(2.0)
    np.testing.assert_allclose(
        loss(teacher + 7.0, student - 3.0).numpy(), loss(teacher, student).numpy(), rtol=1e-5
    )


def test_logits_kd_config_round_trip():
    loss = kd.losses.LogitsKD(temperature=3.0, name="soft")
    restored = kd.losses.LogitsKD.from_config(loss.get_config())
    assert restored.temperature == 3.0 and restored.name == "soft"
    assert (
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss)).temperature
        == 3.0
    )


def test_logits_kd_save_load_round_trip_inside_a_distiller(tmp_path, teacher, student):
    distiller = kd.Distiller(student, teacher, losses=[kd.losses.LogitsKD(6.0)])
    distiller.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    assert isinstance(loaded.distillation_losses[0], kd.losses.LogitsKD)
    assert loaded.distillation_losses[0].temperature == 6.0


def test_logits_kd_shape_mismatch_names_both_shapes():
    with pytest.raises(
        ValueError,
        match=r"teacher logits have shape \(2, 10\) but student logits have shape \(2, 7\)",
    ):
        kd.losses.LogitsKD()(tf.zeros((2, 10)), tf.zeros((2, 7)))


@pytest.mark.parametrize("temperature", [0, -1.0, float("inf"), "hot", None])
def test_logits_kd_rejects_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be"):
        kd.losses.LogitsKD(temperature)
