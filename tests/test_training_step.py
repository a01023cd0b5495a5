"""One training step: the Distiller, mutual learning, early exits and slimmable models share it.

Every model that trains gets, from ``keras_kd.training_step.TrainingStep``, the same non-finite
guard, unlabeled rows, metrics and replica scaling; these tests run each behaviour on each model.
"""

import os
import re

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd import students as st
from keras_kd._compat import tf
from keras_kd.training_step import StepOutputs, TrainingStep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dense(name, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name=f"{name}_conv")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name=f"{name}_logits")(x), name=name)


def _models():
    """Each kind of keras_kd model that trains, compiled."""
    teacher = _dense("teacher", 0)
    distiller = kd.Distiller(_dense("student", 1), teacher)
    distiller.compile("adam", kd.recipes.hard_loss(), ["accuracy"])
    learner = kd.schemes.MutualLearner([_dense("a", 2), _dense("b", 3)])
    learner.compile("adam")
    early = st.EarlyExit(_dense("backbone", 4), exits=["backbone_conv"])
    early.compile("adam")
    keras.utils.set_random_seed(5)
    slim = st.make_slimmable_cnn((8, 8, 1), 10, width=4, widths=(0.5, 1.0))
    slim.compile("adam")
    return {"distiller": distiller, "mutual": learner, "early_exit": early, "slimmable": slim}


KINDS = ("distiller", "mutual", "early_exit", "slimmable")


def _trained_weights(model):
    """The trained variables and the forward-pass state (batch-norm statistics) of ``model``."""
    state = [w for layer in model._guarded_layers() for w in layer.non_trainable_weights]
    return [v.numpy() for v in [*model._step_variables(), *state]]


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_is_a_training_step_and_stops_at_a_nan_before_its_update(digits, kind):
    model = _models()[kind]
    assert isinstance(model, TrainingStep)
    (x, y), _ = digits
    x = x[:64].copy()
    x[5] = np.nan
    before = _trained_weights(model)
    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        model.fit(x, y[:64], batch_size=64, epochs=1, verbose=0)
    for old, new in zip(before, _trained_weights(model)):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("kind", ("distiller", "mutual", "slimmable"))
def test_unlabeled_rows_do_not_count_in_the_hard_loss_or_the_accuracy(digits, kind):
    (x, y), _ = digits
    x, y = x[:64], y[:64].astype(np.int64)
    half = y.copy()
    half[32:] = -1  # unlabeled
    model = _models()[kind]
    full = model.evaluate(x[:32], y[:32], batch_size=64, verbose=0, return_dict=True)
    masked = model.evaluate(x, half, batch_size=64, verbose=0, return_dict=True)
    # Means over the 32 labeled rows, and the loss of a batch is its per-example mean.
    for name, value in full.items():
        if name.endswith("accuracy"):
            assert masked[name] == pytest.approx(value, abs=1e-6), name
        elif name.endswith("hard_loss"):
            assert masked[name] == pytest.approx(value, rel=1e-5), name
    history = model.fit(x, half, batch_size=32, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())


@pytest.mark.parametrize("kind", KINDS)
def test_fit_logs_the_loss_and_an_accuracy_per_scored_output(digits, kind):
    (x, y), _ = digits
    model = _models()[kind]
    history = model.fit(x[:128], y[:128], batch_size=32, epochs=1, verbose=0).history
    assert "loss" in history and np.isfinite(history["loss"][-1])
    accuracies = [k for k in history if k.endswith("accuracy")]
    assert accuracies and all(0.0 <= history[k][-1] <= 1.0 for k in accuracies)


def test_a_subclass_with_one_hard_term_trains_like_keras_fit(digits):
    (x, y), _ = digits

    class Plain(TrainingStep):
        def __init__(self, model):
            super().__init__()
            self.model = model
            self._track(terms=["hard_loss"])

        def _step_terms(self, x, y, sample_weight, targets, training):
            logits = self.model(x, training=training)
            return StepOutputs(
                [("hard_loss", 1.0, self.hard_term(y, logits, sample_weight))], logits
            )

    plain = Plain(_dense("plain", 7))
    reference = _dense("plain", 7)
    plain.compile(keras.optimizers.SGD(0.1), kd.recipes.hard_loss(), ["accuracy"])
    reference.compile(keras.optimizers.SGD(0.1), kd.recipes.hard_loss(), ["accuracy"])
    ours = plain.fit(x[:128], y[:128], batch_size=32, epochs=2, shuffle=False, verbose=0)
    theirs = reference.fit(x[:128], y[:128], batch_size=32, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ours.history["loss"], theirs.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(ours.history["hard_loss"], theirs.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(ours.history["accuracy"], theirs.history["accuracy"], atol=1e-6)
    for a, b in zip(plain.model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_the_package_has_one_train_step_and_no_module_over_400_lines():
    steps, long_modules = [], []
    for folder in ("keras_kd", "examples"):
        for directory, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
                relative = os.path.relpath(path, ROOT)
                if text.count("\n") > 400:
                    long_modules.append(relative)
                if folder == "keras_kd":
                    steps += [relative for _ in re.finditer(r"def (train|test)_step\(", text)]
    assert steps == ["keras_kd/training_step.py"] * 2
    assert long_modules == []


def test_the_distiller_does_not_import_compress():
    with open(os.path.join(ROOT, "keras_kd", "distiller.py"), encoding="utf-8") as handle:
        text = handle.read()
    assert not re.search(r"^\s*(from|import) keras_kd(\.| import )compress", text, re.MULTILINE)


def test_the_teacher_stage_serves_a_training_step_of_your_own(digits):
    """TeacherStage used without the Distiller: cached teacher logits reach a custom step."""
    (x, y), _ = digits
    x, y = x[:128], y[:128]
    teacher = _dense("teacher", 0)
    kd_loss = kd.losses.LogitsKD(temperature=2.0)

    class Mine(TrainingStep):
        def __init__(self, student):
            super().__init__()
            self.student = student
            self.stage = kd.teacher_stage.TeacherStage([teacher], [kd_loss])
            self._track(terms=["kd"])

        def _step_inputs(self, x, training):
            return self.stage.outputs(x, training)

        def _step_terms(self, x, y, sample_weight, targets, training):
            logits = self.student(x, training=training)
            if targets is None:
                return StepOutputs([], logits)
            return StepOutputs([("kd", 1.0, kd_loss(targets[0], logits))], logits)

        def fit(self, x, y, **kwargs):
            x, y, kwargs = self.stage.prepare(x, y, kwargs)
            return super().fit(x, y, **kwargs)

    mine = Mine(_dense("student", 1))
    mine.compile("adam")
    history = mine.fit(x, y, batch_size=32, epochs=2, verbose=0).history
    assert mine.stage.cached is True and mine.stage.cache.passes == 1
    assert history["kd"][-1] < history["kd"][0]
    x_batch, (logits, _) = mine.stage.outputs(x[:8])
    np.testing.assert_allclose(logits.numpy(), teacher(x[:8]).numpy(), atol=1e-5)


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("as_dataset", [False, True])
def test_first_fit_traces_the_step_once_and_scores_the_labels_as_given(digits, one_hot, as_dataset):
    """The optimizer's slots and the compiled metrics exist before ``fit`` traces the step.

    Made in the first trace, they would make ``tf.function`` trace it a second time. The metric
    built up front must still be the one Keras chooses from the labels: sparse or categorical.
    """
    (x, y), _ = digits
    x, y = x[:64], y[:64]
    labels = np.eye(10, dtype="float32")[y] if one_hot else y
    student = _dense("student", 1)
    expected = np.mean(np.argmax(student.predict(x, verbose=0), -1) == y)
    losses = keras.losses
    loss = losses.CategoricalCrossentropy if one_hot else losses.SparseCategoricalCrossentropy
    distiller = kd.Distiller(student, _dense("teacher", 0))
    distiller.compile(keras.optimizers.Adam(), loss(from_logits=True), ["accuracy"])
    data = {"x": x, "y": labels, "batch_size": 64}
    if as_dataset:
        data = {"x": tf.data.Dataset.from_tensor_slices((x, labels)).batch(64)}
    history = distiller.fit(**data, epochs=1, verbose=0)
    assert distiller.train_function.experimental_get_tracing_count() == 1
    assert history.history["accuracy"][0] == pytest.approx(expected)  # before the one update


def test_a_mutual_learner_traces_its_step_once(digits):
    (x, y), _ = digits
    learner = kd.schemes.MutualLearner([_dense("a", 2), _dense("b", 3)])
    learner.compile(keras.optimizers.Adam())
    learner.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    assert learner.train_function.experimental_get_tracing_count() == 1


def test_build_before_fit_gives_a_plain_keras_fit_one_trace_and_refuses_an_uncompiled_model(
    digits,
):
    (x, y), _ = digits
    model = _dense("plain", 4)
    with pytest.raises(ValueError, match="model must be compiled.*received: model='plain'"):
        kd.training_step.build_before_fit(model, x, y)
    model.compile(keras.optimizers.Adam(), kd.recipes.hard_loss(), ["accuracy"])
    assert kd.training_step.build_before_fit(model, x[:64], y[:64]) is model
    model.fit(x[:64], y[:64], batch_size=64, epochs=1, verbose=0)
    assert model.train_function.experimental_get_tracing_count() == 1  # Keras alone: 2
