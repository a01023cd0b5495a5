"""Tests of the loss contract: two base classes, dispatch by class, ensembles, the shared math."""

import functools
import os
import re

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd import students as st
from keras_kd._compat import tf
from keras_kd.losses import _ops
from tests.conftest import ROOT, weights_equal

BLOCK2 = [("t_block2", "s_block2")]


@functools.cache
def _readme_losses():
    """The classes of README's "Writing your own loss" example, run from README.md itself."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
        text = readme.read()
    section = text[text.index("## Writing your own loss") :]
    block = re.search(r"^```python\n(.*?)^```", section, re.DOTALL | re.MULTILINE).group(1)
    namespace = {"kd": kd, "keras": keras}
    exec(block, namespace)  # noqa: S102 - the README's own example, under test
    return namespace["LogitMatching"], namespace["PooledHint"]


class _LogitRecorder(kd.losses.LogitLoss):
    """Records what it receives. Its ``pairs`` attribute must not make it a feature loss."""

    uses_labels = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pairs = BLOCK2
        self.seen = []

    def call(self, teacher_logits, student_logits, labels=None):
        self.seen.append((teacher_logits.numpy(), student_logits.shape, labels.numpy()))
        return tf.reduce_mean(tf.square(teacher_logits - student_logits))


class _FeatureRecorder(kd.losses.FeatureLoss):
    """Records the feature shapes it receives; ``uses_labels`` means nothing to a feature loss."""

    uses_labels = True

    def __init__(self, pairs, **kwargs):
        super().__init__(pairs, **kwargs)
        self.seen = []

    def call(self, teacher_features, student_features):
        self.seen.append(([t.shape for t in teacher_features], [s.shape for s in student_features]))
        return tf.reduce_mean(tf.square(tf.reduce_mean(teacher_features[0], -1)))


def _fit_one_batch(student, teacher, losses, x, y, **kwargs):
    distiller = kd.Distiller(
        student, teacher, losses=losses, cache_teacher=False, teacher_precision="float32", **kwargs
    )
    distiller.compile(keras.optimizers.SGD(0.0), run_eagerly=True)
    return distiller.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)


def test_distiller_dispatches_on_the_class_not_on_attributes(digits, teacher, student):
    (x, y), _ = digits
    logit_loss, feature_loss = _LogitRecorder(), _FeatureRecorder(BLOCK2)
    _fit_one_batch(student, teacher, [logit_loss, feature_loss], x[:16], y[:16], alpha=0.0)
    teacher_logits, student_shape, labels = logit_loss.seen[0]
    np.testing.assert_allclose(teacher_logits, teacher(x[:16], training=False), rtol=1e-5)
    assert student_shape == (16, 10)
    np.testing.assert_array_equal(labels, y[:16])
    assert feature_loss.seen[0] == ([(16, 4, 4, 32)], [(16, 4, 4, 16)])


def test_several_teachers_reach_a_logit_loss_as_their_ensemble(digits, teacher, student):
    (x, y), _ = digits
    second = keras.models.clone_model(teacher)  # fresh weights: a different teacher
    recorder = _LogitRecorder()
    recorder.temperature = 2.0  # the ensemble averages the teachers at the loss's temperature
    _fit_one_batch(student, [teacher, second], [recorder], x[:16], -np.ones(16, int), alpha=0.0)
    logits = [m(x[:16], training=False) for m in (teacher, second)]
    expected = _ops.ensemble_logits(logits, temperature=2.0).numpy()
    teacher_logits, _, labels = recorder.seen[0]
    np.testing.assert_allclose(teacher_logits, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, _ops.ensemble_logits(logits).numpy().argmax(-1))


def test_logits_kd_of_the_ensemble_is_multi_teacher_kd_with_equal_weights():
    rng = np.random.default_rng(0)
    teachers = [tf.constant(rng.normal(size=(8, 5)) * 3, tf.float32) for _ in range(3)]
    student = tf.constant(rng.normal(size=(8, 5)), tf.float32)
    kd_loss = kd.losses.LogitsKD(temperature=3.0)
    ensemble = kd_loss.ensemble(teachers)
    np.testing.assert_allclose(
        tf.nn.softmax(ensemble / 3.0),
        np.mean([tf.nn.softmax(t / 3.0) for t in teachers], axis=0),
        rtol=1e-5,
    )
    expected = kd.losses.MultiTeacherKD(temperature=3.0)(teachers, student)
    np.testing.assert_allclose(kd_loss(ensemble, student), expected, rtol=1e-5)
    assert kd_loss.ensemble(teachers[:1]) is teachers[0]
    assert kd.losses.MultiTeacherKD().ensemble(teachers) == teachers


def test_dkd_trains_from_two_teachers_with_labels_from_their_ensemble(digits, teacher, student):
    (x, y), _ = digits
    second = keras.models.clone_model(teacher)
    labels = np.where(np.arange(32) % 2 == 0, y[:32], -1)  # half unlabeled: the ensemble's top-1
    loss = kd.losses.DKD()
    history = _fit_one_batch(student, [teacher, second], [loss], x[:32], labels, alpha=0.0)
    assert np.isfinite(history.history["dkd"][0])


class _PlainLayer(keras.layers.Layer):
    pairs = None

    def call(self, teacher, student):
        return tf.reduce_mean(tf.square(teacher - student))


class _RootSubclass(kd.losses.DistillationLoss):
    def call(self, teacher, student):
        return tf.reduce_mean(tf.square(teacher - student))


@pytest.mark.parametrize("make_loss", [_PlainLayer, _RootSubclass, lambda: "kd"])
def test_a_loss_of_neither_base_class_is_refused_naming_the_argument(make_loss, teacher, student):
    loss = make_loss()
    with pytest.raises(TypeError, match=r"LogitLoss or keras_kd.losses.FeatureLoss") as error:
        kd.Distiller(student, teacher, losses=[loss])
    assert f"received: losses={[loss]!r}" in str(error.value)


@pytest.mark.parametrize(
    "loss",
    [kd.losses.AttentionTransfer(BLOCK2), kd.losses.RKD()],
    ids=["attention_transfer", "rkd_on_logits"],
)
def test_feature_losses_are_refused_with_several_teachers(loss, teacher, student):
    second = keras.models.clone_model(teacher)
    with pytest.raises(ValueError, match=rf"losses \['{loss.name}'\] take one teacher's features"):
        kd.Distiller(student, [teacher, second], losses=[loss])


def test_readme_losses_train_save_and_load(digits, teacher, student, tmp_path):
    logit_matching, pooled_hint = _readme_losses()
    (x, y), _ = digits
    hint = pooled_hint(pairs=BLOCK2)
    distiller = kd.Distiller(student, teacher, losses=[logit_matching(), hint], alpha=0.1)
    assert [a.kernel.shape for a in hint.adapters] == [(16, 32)]  # built before training
    teacher_before, adapter_before = teacher.get_weights(), hint.get_weights()
    distiller.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(True))
    history = distiller.fit(x[:128], y[:128], batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["logit_matching"][0])
    assert np.isfinite(history.history["pooled_hint"][0])
    assert weights_equal(teacher.get_weights(), teacher_before)
    assert not weights_equal(hint.get_weights(), adapter_before)
    distiller.save(tmp_path / "own.keras")
    loaded = keras.models.load_model(tmp_path / "own.keras").distillation_losses
    assert [type(loss).__name__ for loss in loaded] == ["LogitMatching", "PooledHint"]
    assert weights_equal(loaded[1].get_weights(), hint.get_weights())


def test_readme_feature_loss_checks_shapes_when_the_distiller_is_made(teacher, student):
    _, pooled_hint = _readme_losses()
    with pytest.raises(ValueError, match=r"'t_dense' has shape \(None, 128\).*image features"):
        kd.Distiller(student, teacher, losses=[pooled_hint(pairs=[("t_dense", "s_block2")])])


@pytest.mark.parametrize(
    "loss",
    [
        kd.losses.LogitsKD(2.0),
        kd.losses.DKD(),
        kd.losses.MultiTeacherKD(teacher_weights=[1.0, 2.0]),
        kd.losses.DIST(),
        st.ExitDistillation(2.0),
    ],
    ids=lambda loss: loss.name,
)
def test_logit_loss_configs_of_earlier_versions_with_pairs_none_still_load(loss):
    config = loss.get_config()
    assert "pairs" not in config
    old = {**config, "pairs": None}
    assert type(loss).from_config(old).get_config() == config
    serialized = keras.saving.serialize_keras_object(loss)
    serialized["config"] = old
    assert keras.saving.deserialize_keras_object(serialized).get_config() == config


def _counting(monkeypatch, name):
    """Replaces ``_ops.<name>`` by a wrapper that counts its calls; returns the counter."""
    calls, original = [], getattr(_ops, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(_ops, name, counted)
    return calls


def test_students_and_losses_use_the_one_soft_target_loss(monkeypatch, digits):
    (x, _), _ = digits
    calls = _counting(monkeypatch, "soft_target_loss")
    rng = np.random.default_rng(1)
    teacher = tf.constant(rng.normal(size=(4, 10)) * 3, tf.float32)
    exits = tf.constant(rng.normal(size=(4, 3, 10)), tf.float32)
    loss = st.ExitDistillation(temperature=2.0, distillation_weight=0.0, teacher_weight=1.0)
    _, _, teacher_term = loss.terms(teacher, exits, np.zeros(4, int))
    expected = 4.0 * np.mean(_ops.softened_kl(teacher, exits[:, -1], 2.0))
    np.testing.assert_allclose(teacher_term, expected, rtol=1e-6)
    assert len(calls) == 3  # two exits taught by the last, one by the teacher

    del calls[:]
    model = st.make_slimmable_cnn((8, 8, 1), 10, width=8, widths=(0.5, 1.0), temperature=3.0)
    target = model(x[:8], training=True, width=1.0)
    value = model._inplace(target, x[:8], 0.5)
    narrow = model(x[:8], training=True, width=0.5)
    np.testing.assert_allclose(value, 9.0 * np.mean(_ops.softened_kl(target, narrow, 3.0)), 1e-5)
    kd.losses.LogitsKD(2.0)(teacher, exits[:, 0])
    assert len(calls) == 2


def test_multi_teacher_kd_uses_the_one_log_mean_probabilities(monkeypatch):
    calls = _counting(monkeypatch, "log_mean_probabilities")
    teachers = [tf.constant([[2.0, 0.0, 1.0]]), tf.constant([[0.0, 3.0, 1.0]])]
    kd.losses.MultiTeacherKD(temperature=2.0)(teachers, tf.constant([[1.0, 1.0, 0.0]]))
    assert calls == ["log_mean_probabilities"]


@pytest.mark.parametrize("weights", [None, [1.0, 0.0, 3.0]])
def test_log_mean_probabilities_matches_numpy_and_stays_finite(weights):
    rng = np.random.default_rng(2)
    logits = [rng.normal(size=(6, 4)) * 1e4 for _ in range(3)]
    w = np.ones(3) if weights is None else np.array(weights)
    w = w / w.sum()

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    expected = sum(wi * softmax(z / 5.0) for wi, z in zip(w, logits))
    value = _ops.log_mean_probabilities([tf.constant(z, tf.float32) for z in logits], 5.0, weights)
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(np.exp(value), expected, atol=1e-6)
