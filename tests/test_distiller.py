"""Tests of keras_kd.Distiller: what fit trains, what it reports, what it refuses."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf
from tests import forked_script_runs
from tests.conftest import weights_equal


def _sparse_ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _compiled(student, teacher, loss=None, optimizer=None, **kwargs):
    distiller = kd.Distiller(student=student, teacher=teacher, **kwargs)
    distiller.compile(
        optimizer or keras.optimizers.Adam(3e-3), loss or _sparse_ce(), metrics=["accuracy"]
    )
    return distiller


@pytest.mark.parametrize("labels", ["sparse", "one_hot"])
@pytest.mark.parametrize("source", ["numpy", "tf.data"])
def test_fit_changes_student_and_never_teacher(digits, teacher, student, labels, source):
    (x, y), _ = digits
    x, y = x[:256], y[:256]
    loss = _sparse_ce()
    if labels == "one_hot":
        y = keras.utils.to_categorical(y, 10)
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    teacher_before, student_before = teacher.get_weights(), student.get_weights()
    distiller = _compiled(student, teacher, loss=loss)
    if source == "numpy":
        history = distiller.fit(x, y, batch_size=64, epochs=1, verbose=0)
    else:
        history = distiller.fit(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(64), epochs=1, verbose=0
        )
    assert weights_equal(teacher.get_weights(), teacher_before)
    assert not weights_equal(student.get_weights(), student_before)
    assert np.isfinite(history.history["loss"][0])


def test_fit_reports_total_hard_each_term_and_metrics(digits, teacher, student):
    (x, y), (xt, yt) = digits
    distiller = _compiled(student, teacher)
    history = distiller.fit(
        x[:128], y[:128], batch_size=64, epochs=1, validation_data=(xt, yt), verbose=0
    )
    assert set(history.history) == {
        "loss",
        "hard_loss",
        "dist",
        "accuracy",
        "val_loss",
        "val_accuracy",
    }
    logs = {k: v[0] for k, v in history.history.items()}
    # With a single epoch the reported means are over the same steps, so the total decomposes exactly.
    assert logs["loss"] == pytest.approx(0.5 * logs["hard_loss"] + 0.5 * logs["dist"], rel=1e-4)


def test_distilled_student_on_digits_is_far_above_chance(digits, teacher, student):
    (x, y), (xt, yt) = digits
    distiller = _compiled(student, teacher)
    distiller.fit(x, y, batch_size=64, epochs=12, verbose=0)
    _, accuracy = distiller.evaluate(xt, yt, verbose=0)
    assert accuracy > 0.6  # chance is 0.1


def test_evaluate_and_predict_use_the_student_alone(digits, teacher, student):
    _, (xt, yt) = digits
    distiller = _compiled(student, teacher)
    np.testing.assert_allclose(
        distiller.predict(xt, verbose=0), student.predict(xt, verbose=0), atol=1e-6
    )
    student.compile(loss=_sparse_ce(), metrics=["accuracy"])
    np.testing.assert_allclose(
        distiller.evaluate(xt, yt, verbose=0), student.evaluate(xt, yt, verbose=0), rtol=1e-5
    )


def test_sample_weight_weighs_the_hard_loss(digits, teacher, student):
    (x, y), _ = digits
    distiller = _compiled(student, teacher)
    history = distiller.fit(
        x[:64], y[:64], sample_weight=np.zeros(64), batch_size=64, epochs=1, verbose=0
    )
    assert history.history["hard_loss"][0] == 0.0
    assert history.history["dist"][0] > 0.0


def test_callbacks_are_called(digits, teacher, student):
    (x, y), _ = digits
    seen = []
    callback = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(sorted(logs))
    )
    _compiled(student, teacher).fit(x[:64], y[:64], epochs=2, verbose=0, callbacks=[callback])
    assert len(seen) == 2 and "dist" in seen[0]


def test_alpha_zero_trains_without_labels(digits, teacher, student):
    (x, _), _ = digits
    before = student.get_weights()
    distiller = kd.Distiller(student=student, teacher=teacher, alpha=0.0)
    distiller.compile(keras.optimizers.Adam(3e-3))
    history = distiller.fit(x[:128], batch_size=64, epochs=1, verbose=0)
    assert "hard_loss" not in history.history
    assert not weights_equal(before, student.get_weights())


def test_labels_missing_while_alpha_positive_is_an_error(digits, teacher, student):
    (x, _), _ = digits
    with pytest.raises(ValueError, match="alpha=0.5 > 0 needs labels"):
        _compiled(student, teacher).fit(x[:64], epochs=1, verbose=0)


class _NaNAfter(kd.losses.LogitLoss):
    """A loss that is finite for ``finite_steps`` calls and NaN afterwards."""

    def __init__(self, finite_steps, **kwargs):
        super().__init__(**kwargs)
        self.finite_steps = finite_steps
        self.calls = tf.Variable(0, trainable=False)

    def call(self, teacher, student):
        self.calls.assign_add(1)
        value = tf.reduce_mean(tf.square(teacher - student))
        return tf.where(self.calls > self.finite_steps, tf.constant(np.nan), value)


def test_nonfinite_loss_stops_training_and_keeps_last_finite_weights(digits, teacher, student):
    (x, y), _ = digits
    distiller = _compiled(student, teacher, losses=[_NaNAfter(finite_steps=2, name="exploding")])
    before = student.get_weights()
    with pytest.raises(FloatingPointError, match="'exploding' became NaN or Inf"):
        distiller.fit(x[:256], y[:256], batch_size=32, epochs=1, shuffle=False, verbose=0)
    after = student.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert not weights_equal(before, after)  # the two finite steps were applied, the third was not

    reference = keras.models.clone_model(student)
    reference.set_weights(before)
    check = _compiled(reference, teacher, losses=[_NaNAfter(finite_steps=2, name="exploding")])
    check.fit(x[:64], y[:64], batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(after, reference.get_weights()))


def test_mirrored_strategy_on_two_cpus_matches_one_device(digits, teacher, student):
    (x, y), _ = digits
    x, y = x[:128], y[:128]
    initial = student.get_weights()

    def train(strategy):
        with strategy.scope():
            model = keras.models.clone_model(student)
            model.set_weights(initial)
            teacher_copy = keras.models.clone_model(teacher)
            teacher_copy.set_weights(teacher.get_weights())
            # DIST's intra-class term is computed per replica, so a per-example loss is compared.
            distiller = _compiled(
                model,
                teacher_copy,
                optimizer=keras.optimizers.SGD(0.1),
                losses=[kd.losses.LogitsKD(4.0)],
            )
        distiller.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
        return model.get_weights()

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2
    mirrored = train(tf.distribute.MirroredStrategy(devices))
    single = train(tf.distribute.get_strategy())
    assert not weights_equal(mirrored, initial)
    for a, b in zip(mirrored, single):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_mixed_float16_policy_trains_like_float32(digits, trained_teacher_weights):
    """The same training under mixed_float16 and float32, from the same initial weights.

    float16 activations round to about 1e-3 relative; over 8 SGD steps the per-epoch losses agree
    within 0.1 % and every weight within 2e-3 (measured: 3e-4), while training moves them by > 0.05.
    """
    from examples.models import make_student, make_teacher

    (x, y), _ = digits
    keras.utils.set_random_seed(1)
    initial = make_student(x.shape[1:], 10, width=8).get_weights()
    runs = {}
    for policy in ("float32", "mixed_float16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            teacher = make_teacher(x.shape[1:], 10, width=16)
            teacher.set_weights(trained_teacher_weights)
            student = make_student(x.shape[1:], 10, width=8)
            student.set_weights(initial)
            # KD's per-example gradients are the reference; DIST's correlations amplify float16
            # rounding (weights 2.4e-3 apart here), so its tolerance would hide less.
            distiller = _compiled(
                student,
                teacher,
                optimizer=keras.optimizers.SGD(0.1),
                losses=[kd.losses.LogitsKD(4.0)],
                alpha=0.1,
            )
            history = distiller.fit(
                x[:256], y[:256], batch_size=64, epochs=2, shuffle=False, verbose=0
            )
        finally:
            keras.mixed_precision.set_global_policy("float32")
        runs[policy] = (distiller, history.history["loss"], student.get_weights())
    mixed, mixed_losses, mixed_weights = runs["mixed_float16"]
    _, losses, weights = runs["float32"]
    assert isinstance(mixed.optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert mixed.student.layers[-1].compute_dtype == "float16"
    np.testing.assert_allclose(mixed_losses, losses, rtol=1e-3)
    moved = max(np.abs(w - w0).max() for w, w0 in zip(weights, initial))
    assert moved > 0.05
    for a, b in zip(mixed_weights, weights):
        np.testing.assert_allclose(a, b, atol=2e-3)


def test_config_round_trip(teacher, student):
    distiller = kd.Distiller(
        student, teacher, losses=[kd.losses.LogitsKD(2.5)], alpha=0.3, loss_weights=[0.5]
    )
    restored = kd.Distiller.from_config(distiller.get_config())
    assert restored.alpha == 0.3 and restored.loss_weights == [0.5]
    assert restored.distillation_losses[0].temperature == 2.5
    assert restored.student.count_params() == student.count_params()
    assert restored.get_config() == distiller.get_config()


def test_save_load_round_trip_and_save_student(digits, teacher, student, tmp_path):
    (x, y), (xt, _) = digits
    distiller = _compiled(student, teacher)
    distiller.fit(x[:64], y[:64], epochs=1, verbose=0)
    distiller.save(tmp_path / "distiller.keras")
    loaded = keras.models.load_model(tmp_path / "distiller.keras")
    assert isinstance(loaded, kd.Distiller)
    np.testing.assert_allclose(
        loaded.predict(xt[:8], verbose=0), distiller.predict(xt[:8], verbose=0), atol=1e-6
    )
    loaded.fit(x[:64], y[:64], epochs=1, verbose=0)  # recompiled from the saved compile config

    path = distiller.save_student(str(tmp_path / "student.keras"))
    saved = keras.models.load_model(path)
    assert saved.count_params() == student.count_params()
    assert [layer.name for layer in saved.layers] == [layer.name for layer in student.layers]


def _unbuilt_subclassed():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(10)

        def call(self, x):
            return self.dense(x)

    return Net()


@pytest.mark.parametrize(
    "make_kwargs, error, message",
    [
        (lambda t, s: {"student": None, "teacher": t}, ValueError, "student is required"),
        (
            lambda t, s: {"student": s, "teacher": "resnet"},
            TypeError,
            "teacher must be a keras.Model",
        ),
        (lambda t, s: {"student": _unbuilt_subclassed(), "teacher": t}, ValueError, "is not built"),
        (lambda t, s: {"student": t, "teacher": t}, ValueError, "must be different models"),
        (
            lambda t, s: {"student": s, "teacher": t, "alpha": -0.1},
            ValueError,
            r"alpha must be a number in \[0, 1\], received: alpha=-0.1",
        ),
        (
            lambda t, s: {"student": s, "teacher": t, "alpha": 1.5},
            ValueError,
            "received: alpha=1.5",
        ),
        (
            lambda t, s: {"student": s, "teacher": t, "alpha": "0.1"},
            ValueError,
            "received: alpha='0.1'",
        ),
        (
            lambda t, s: {"student": s, "teacher": t, "loss_weights": [1.0, 2.0]},
            ValueError,
            r"one weight per distillation loss \(1\)",
        ),
        (
            lambda t, s: {"student": s, "teacher": t, "loss_weights": [-1.0]},
            ValueError,
            "finite numbers >= 0",
        ),
        (
            lambda t, s: {"student": s, "teacher": t, "losses": []},
            ValueError,
            "at least one distillation loss",
        ),
        (
            lambda t, s: {"student": s, "teacher": t, "losses": ["kd"]},
            TypeError,
            "must be a Keras layer",
        ),
    ],
)
def test_bad_arguments_raise_before_training(teacher, student, make_kwargs, error, message):
    with pytest.raises(error, match=message):
        kd.Distiller(**make_kwargs(teacher, student))


def test_output_shape_mismatch_names_both_shapes(teacher):
    other = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(7)]
    )
    with pytest.raises(
        ValueError, match=r"outputs shape \(None, 10\) but student .* outputs shape \(None, 7\)"
    ):
        kd.Distiller(student=other, teacher=teacher)


def test_softmax_output_is_refused(teacher):
    probs = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    with pytest.raises(ValueError, match="ends in a softmax"):
        kd.Distiller(student=probs, teacher=teacher)


@pytest.mark.parametrize(
    "loss, message",
    [
        (None, "compile needs loss="),
        ("sparse_categorical_crossentropy", "expects probabilities"),
        (keras.losses.SparseCategoricalCrossentropy(), "expects probabilities"),
    ],
)
def test_compile_refuses_a_missing_or_probability_loss(teacher, student, loss, message):
    distiller = kd.Distiller(student=student, teacher=teacher)
    with pytest.raises(ValueError, match=message):
        distiller.compile("adam", loss=loss)


def test_alpha_zero_without_a_hard_loss_validates_with_metrics_only(digits, teacher, student):
    (x, y), (x_val, y_val) = digits
    distiller = kd.Distiller(student=student, teacher=teacher, alpha=0.0)
    distiller.compile(keras.optimizers.Adam(1e-3), metrics=["accuracy"])
    history = distiller.fit(
        x[:64], y[:64], validation_data=(x_val[:32], y_val[:32]), epochs=1, verbose=0
    )
    assert "val_accuracy" in history.history and "val_loss" not in history.history


_FIT_ALONE = """
import sys
import numpy as np
import keras_kd as kd
from keras_kd import keras

def linear(name):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name=name)

distiller = kd.Distiller(linear("student"), linear("teacher"))
distiller.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
distiller.fit(np.zeros((8, 4), "float32"), np.zeros(8, int), verbose=0)
prefixes = ("keras_kd.compress", "tensorflow_model_optimization")
print(sorted(m for m in sys.modules if m.startswith(prefixes)))
"""


def test_fit_imports_neither_compress_nor_tfmot():
    # Forked from a process that imported only TensorFlow: this one imports keras_kd itself.
    done = forked_script_runs.run_script({"code": _FIT_ALONE}, preload="tensorflow")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
