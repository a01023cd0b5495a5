"""Distillation without labels: unlabeled rows, consistent augmentation (Beyer et al. 2022)."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf
from tests.conftest import weights_equal


def test_mixed_batch_computes_the_hard_loss_on_labeled_rows_only(digits, teacher, student):
    (x, y), _ = digits
    x, y = x[:64], y[:64].copy()
    y[::3] = kd.data.UNLABELED
    distiller = kd.Distiller(student, teacher, alpha=0.5)
    distiller.compile(
        keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = distiller.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)

    logits = student.predict(x, verbose=0).astype(np.float64)
    log_probs = (
        logits
        - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True))
        - logits.max(1, keepdims=True)
    )
    labeled = y >= 0
    expected = -log_probs[labeled, y[labeled]].mean()
    assert history.history["hard_loss"][0] == pytest.approx(expected, rel=1e-4)


def test_one_hot_rows_of_zeros_are_unlabeled(digits, teacher, student):
    (x, y), _ = digits
    one_hot = keras.utils.to_categorical(y[:64], 10)
    one_hot[1::2] = 0.0
    distiller = kd.Distiller(student, teacher, alpha=0.5)
    distiller.compile(
        keras.optimizers.SGD(0.0), keras.losses.CategoricalCrossentropy(from_logits=True)
    )
    history = distiller.fit(x[:64], one_hot, batch_size=64, epochs=1, shuffle=False, verbose=0)
    logits = student.predict(x[:64], verbose=0)
    expected = keras.losses.sparse_categorical_crossentropy(
        y[:64][::2], logits[::2], from_logits=True
    )
    assert history.history["hard_loss"][0] == pytest.approx(float(np.mean(expected)), rel=1e-4)


def test_fit_on_a_labeled_plus_unlabeled_set_trains(digits, teacher, student):
    (x, y), _ = digits
    x_all, y_all = kd.data.with_unlabeled(x[:64], y[:64], x[64:256])
    assert (y_all == kd.data.UNLABELED).sum() == 192
    before = student.get_weights()
    distiller = kd.Distiller(student, teacher, alpha=0.1)
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = distiller.fit(x_all, y_all, batch_size=64, epochs=1, verbose=0)
    assert np.isfinite(history.history["hard_loss"][0])
    assert not weights_equal(before, student.get_weights())


def test_alpha_positive_with_every_label_missing_is_an_error(digits, teacher, student):
    (x, _), _ = digits
    distiller = kd.Distiller(student, teacher, alpha=0.1)
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="every example in y is unlabeled"):
        distiller.fit(x[:32], np.full(32, kd.data.UNLABELED), epochs=1, verbose=0)


class _Probe(keras.layers.Layer):
    """Records the last batch it saw, so a test can compare what two models received."""

    def __init__(self, batch_shape, **kwargs):
        super().__init__(**kwargs)
        self.seen = tf.Variable(tf.zeros(batch_shape), trainable=False)

    def call(self, inputs):
        self.seen.assign(inputs)
        return inputs


def _probed_model(batch_shape, name):
    probe = _Probe(batch_shape, name=f"{name}_probe")
    inputs = keras.Input(batch_shape[1:])
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(probe(inputs)))
    return keras.Model(inputs, outputs, name=name), probe


@pytest.mark.parametrize(
    "augment", [keras.layers.GaussianNoise(0.5), kd.data.MixUp(1.0)], ids=["noise", "mixup"]
)
def test_teacher_and_student_receive_the_identical_augmented_batch(digits, augment):
    (x, _), _ = digits
    batch = x[:32]
    teacher, teacher_probe = _probed_model(batch.shape, "probed_teacher")
    student, student_probe = _probed_model(batch.shape, "probed_student")
    distiller = kd.Distiller(student, teacher, alpha=0.0, augment=augment)
    distiller.compile("adam")
    distiller.fit(batch, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert not distiller.teacher_cached  # augmentation keeps the teacher live
    seen_by_teacher, seen_by_student = teacher_probe.seen.numpy(), student_probe.seen.numpy()
    assert not np.allclose(seen_by_teacher, batch)  # the batch was augmented ...
    np.testing.assert_array_equal(seen_by_teacher, seen_by_student)  # ... once, for both models


def test_mixing_augment_needs_alpha_zero(teacher, student):
    with pytest.raises(ValueError, match="mixes examples.*alpha=0"):
        kd.Distiller(student, teacher, alpha=0.1, augment=kd.data.MixUp())


@pytest.mark.parametrize(
    "augment", [kd.data.MixUp(0.4), kd.data.CutMix(0.7)], ids=["mixup", "cutmix"]
)
def test_distiller_with_a_mixing_layer_saves_and_loads(digits, teacher, student, augment, tmp_path):
    (x, _), _ = digits
    distiller = kd.Distiller(student, teacher, alpha=0.0, augment=augment)
    distiller.compile("adam")
    distiller.fit(x[:64], epochs=1, verbose=0)
    distiller.save(tmp_path / "mixing.keras")
    loaded = keras.models.load_model(tmp_path / "mixing.keras")
    assert type(loaded.augment) is type(augment) and loaded.augment.alpha == augment.alpha
    np.testing.assert_allclose(
        loaded.predict(x[:8], verbose=0), distiller.predict(x[:8], verbose=0), atol=1e-6
    )
