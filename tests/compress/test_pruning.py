"""Tests of keras_kd.compress.prune and training_callbacks, in plain Keras and Distiller fits."""

import re
import warnings

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot  # noqa: E402

from keras_kd import compress, keras
from keras_kd.compress import _common, callbacks, pruning

# 256 examples / batch 32 = 8 steps per epoch; steps count from 1.


@pytest.mark.parametrize(
    "kwargs, expected, run_eagerly",
    [
        ({"target_sparsity": 0.8, "schedule": "constant", "frequency": 4}, 0.8, False),
        (
            {
                "target_sparsity": 0.5,
                "schedule": "polynomial",
                "begin_step": 2,
                "end_step": 10,
                "frequency": 4,
            },
            0.5,
            True,
        ),
    ],
)
def test_distiller_fit_reaches_target_sparsity_without_user_callbacks(
    student, distill, kwargs, expected, run_eagerly
):
    pruned = compress.prune(student, **kwargs)
    distill(pruned, epochs=2, run_eagerly=run_eagerly)
    measured = compress.sparsity(compress.strip(pruned))
    for name in ("s_block1", "s_block2", "s_logits"):
        assert measured[name] == pytest.approx(expected, abs=0.02)


def test_m_by_n_prunes_two_of_every_four_consecutive_weights(student, distill):
    pruned = compress.prune(
        student, None, schedule="constant", frequency=1, m_by_n=(2, 4), layers=["s_block2"]
    )
    distill(pruned)
    kernel = compress.strip(pruned).get_layer("s_block2").kernel.numpy()
    groups = np.moveaxis(kernel, 2, -1).reshape(-1, 4)  # tfmot groups 4 consecutive input channels
    assert np.all(np.sum(groups == 0, axis=1) >= 2)


def test_prune_wraps_only_the_named_layers_and_leaves_the_original_untouched(student):
    before = student.get_weights()
    pruned = compress.prune(student, 0.5, schedule="constant", layers=["s_logits"])
    wrapped = [
        layer.layer.name for layer in pruned.layers if isinstance(layer, _common.PruneLowMagnitude)
    ]
    assert wrapped == ["s_logits"]
    assert not any(a is b for a in pruned.layers for b in student.layers)
    assert all(np.array_equal(a, b) for a, b in zip(before, student.get_weights()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_sparsity": 1.0, "schedule": "constant"}, "target_sparsity must be a number in"),
        ({"target_sparsity": -0.1, "schedule": "constant"}, "target_sparsity must be a number in"),
        ({"target_sparsity": 0.5, "schedule": "cubic"}, "schedule must be one of"),
        ({"target_sparsity": 0.5}, "needs end_step"),
        ({"target_sparsity": 0.5, "end_step": 150, "frequency": 100}, "multiple of frequency"),
        (
            {"target_sparsity": 0.5, "begin_step": 5, "end_step": 5},
            "end_step must be an integer >= 6",
        ),
        (
            {"target_sparsity": 0.5, "schedule": "constant", "frequency": 0},
            "frequency must be an integer >= 1",
        ),
        ({"target_sparsity": 0.5, "schedule": "constant", "begin_step": -1}, "begin_step must be"),
        (
            {"target_sparsity": 0.5, "schedule": "constant", "end_step": 50, "frequency": 100},
            r"end_step must be >= 100, the first pruning update .* received: end_step=50",
        ),
        (
            {"target_sparsity": 0.3, "schedule": "constant", "m_by_n": (2, 4)},
            "pass target_sparsity=None or 0.5",
        ),
        (
            {"target_sparsity": None, "schedule": "constant", "m_by_n": (4, 2)},
            "m_by_n must be a pair",
        ),
        (
            {"target_sparsity": 0.5, "schedule": "constant", "layers": ["nope"]},
            r"unknown layers \['nope'\]",
        ),
    ],
)
def test_prune_rejects_bad_arguments(student, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compress.prune(student, **kwargs)


@keras.utils.register_keras_serializable(package="keras_kd_tests")
class Scale(keras.layers.Layer):
    """A custom layer with a weight, which tfmot cannot wrap."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


def _model_with_custom_layer():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(4, name="hidden")(inputs)
    x = Scale(name="scale")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x))


def test_prune_names_a_layer_tfmot_cannot_wrap_and_the_way_around():
    with pytest.raises(
        ValueError, match=r"'scale' \(Scale\).*layers=\['hidden', 'out'\].*PrunableLayer"
    ):
        compress.prune(_model_with_custom_layer(), 0.5, schedule="constant")
    pruned = compress.prune(
        _model_with_custom_layer(), 0.5, schedule="constant", layers=["hidden", "out"]
    )
    assert isinstance(pruned.get_layer("scale"), Scale)


def test_training_callbacks_depend_on_the_wrappers(student, tmp_path):
    assert compress.training_callbacks(student) == []
    pruned = compress.prune(student, 0.5, schedule="constant")
    kinds = [type(c) for c in compress.training_callbacks(pruned, log_dir=str(tmp_path))]
    assert kinds == [
        tfmot.sparsity.keras.UpdatePruningStep,
        callbacks.ScheduleCheck,
        tfmot.sparsity.keras.PruningSummaries,
    ]


def _schedule_warnings(record):
    return [str(w.message) for w in record if "received:" in str(w.message)]


# small_digits: 8 steps per epoch, so 2 epochs run steps 1 to 16.
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"schedule": "constant"},  # frequency=100: the first mask update is at step 100
            r"frequency must let the first mask update \(step 100\) fall within the 16 steps "
            r"this fit runs \(to step 16\).* received: frequency=100",
        ),
        (
            {"end_step": 40, "frequency": 4},
            r"end_step must be <= 16, the last of the 16 steps this fit runs .* "
            r"received: end_step=40",
        ),
        (
            {"schedule": "constant", "begin_step": 20, "frequency": 4},
            r"begin_step must let the first mask update \(step 20\).* received: begin_step=20",
        ),
    ],
)
def test_a_schedule_that_cannot_finish_within_fit_warns_naming_both_steps(
    student, small_digits, kwargs, message
):
    pruned = compress.prune(student, 0.5, **kwargs)
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(UserWarning) as record:
        pruned.fit(
            *small_digits,
            epochs=2,
            batch_size=32,
            verbose=0,
            callbacks=compress.training_callbacks(pruned),
        )
    [warned] = _schedule_warnings(record)
    assert re.search(message, warned), warned
    assert "'s_block1'" in warned and "'s_logits'" in warned
    if kwargs.get("schedule") == "constant":  # what the warning is about: nothing was pruned
        assert compress.sparsity(compress.strip(pruned))["total"] == 0.0


def test_the_schedule_check_counts_steps_across_fit_calls_and_stays_quiet_when_they_suffice(
    student, distill
):
    pruned = compress.prune(student, 0.5, end_step=24, frequency=4)
    with pytest.warns(UserWarning, match=r"end_step must be <= 8,.* received: end_step=24"):
        distill(pruned, epochs=1)  # Distiller.fit adds the check: steps 1-8
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        distill(pruned, epochs=2)  # steps 9-24 reach end_step
    assert _schedule_warnings(record) == []
    assert compress.sparsity(compress.strip(pruned))["total"] == pytest.approx(0.5, abs=0.02)


class _QuietBoard(keras.callbacks.TensorBoard):
    """A TensorBoard callback that writes nothing (the tensorboard package is optional)."""

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


def test_distiller_fit_keeps_the_users_callback_and_adds_summaries_for_tensorboard(
    student, distill, tmp_path, monkeypatch
):
    summaries = []

    class RecordingSummaries(keras.callbacks.Callback):
        def __init__(self, log_dir):
            super().__init__()
            self.log_dir, self.epochs = log_dir, 0
            summaries.append(self)

        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1

    monkeypatch.setattr(tfmot.sparsity.keras, "PruningSummaries", RecordingSummaries)
    pruned = compress.prune(student, 0.5, schedule="constant", frequency=2)
    mine = tfmot.sparsity.keras.UpdatePruningStep()
    distill(pruned, callbacks=[mine, _QuietBoard(log_dir=str(tmp_path))])
    wrappers = [layer for layer in pruned.layers if isinstance(layer, _common.PruneLowMagnitude)]
    assert (
        mine.prunable_layers == wrappers
    )  # the user's instance did the work, no second one was added
    assert [(s.log_dir, s.epochs) for s in summaries] == [(str(tmp_path), 1)]
    assert compress.sparsity(compress.strip(pruned))["total"] == pytest.approx(0.5, abs=0.02)


def test_plain_keras_fit_of_a_pruned_model_adds_its_callbacks(student, small_digits):
    x, y = small_digits
    pruned = compress.prune(student, 0.5, schedule="constant", frequency=2)
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(UserWarning, match="received: frequency=2"):  # ScheduleCheck was added
        pruned.fit(x[:32], y[:32], epochs=1, batch_size=32, verbose=0)  # 1 step < frequency
    pruned.fit(x, y, epochs=1, batch_size=32, verbose=0)  # no callbacks named
    assert compress.sparsity(compress.strip(pruned))["total"] == pytest.approx(0.5, abs=0.02)


def test_a_copy_without_the_mark_fails_without_the_callback_and_with_it_prunes(
    student, small_digits
):
    x, y = small_digits
    pruned = compress.prune(student, 0.5, schedule="constant", frequency=2)
    with _common.scopes():
        copy = keras.models.clone_model(pruned)  # a new model, which clone_model does not mark
    copy.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(Exception, match="UpdatePruningStep"):
        copy.fit(x, y, epochs=1, verbose=0)
    copy.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=compress.training_callbacks(copy))
    assert compress.sparsity(compress.strip(copy))["total"] == pytest.approx(0.5, abs=0.02)


def test_a_layer_left_unpruned_can_be_tapped_for_a_feature_loss(student, small_digits):
    import keras_kd as kd

    pruned = compress.prune(
        student, target_sparsity=0.5, end_step=2, frequency=1, layers=["s_block1", "s_logits"]
    )
    assert pruned.get_layer("s_block2") is not student.get_layer("s_block2")
    teacher = keras.models.clone_model(student)
    fitnet = kd.losses.FitNetHint(pairs=[("s_block2", "s_block2")])
    distiller = kd.Distiller(pruned, teacher, losses=[kd.losses.LogitsKD(), fitnet])
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = distiller.fit(*small_digits, epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(history.history["fitnet_hint"][0])
    np.testing.assert_allclose(
        compress.sparsity(compress.strip(pruned))["s_block1"], 0.5, atol=0.01
    )


def _model_with_an_empty_channel():
    """Conv2D whose channel 0 is all zeros with a large bias, which the logits depend on."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    kernel, bias = model.get_layer("conv").get_weights()
    kernel[..., 0], bias[0] = 0.0, 2.0
    model.get_layer("conv").set_weights([kernel, bias])
    return model


def test_fill_empty_channels_gives_each_empty_channel_one_tiny_weight():
    model = _model_with_an_empty_channel()
    filled = pruning.fill_empty_channels(model)
    before, after = model.get_layer("conv").kernel.numpy(), filled.get_layer("conv").kernel.numpy()
    assert np.count_nonzero(after[..., 0]) == 1
    assert np.abs(after[..., 0]).max() == pytest.approx(1e-3 * np.abs(before).max())
    np.testing.assert_array_equal(after[..., 1:], before[..., 1:])
    assert not before[..., 0].any()  # the original is not changed
    with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 1\), received: "):
        pruning.fill_empty_channels(model, fraction=0.0)


@pytest.mark.parametrize("fill", [True, False])
def test_pruning_preserving_qat_exports_an_empty_channel_faithfully_only_once_filled(
    small_digits, tmp_path, fill
):
    # The root cause of kd+prune+qat files that disagree with their Keras model: an all-zero
    # channel trains the per-channel range [0, 0], TFLite's int32 bias of scale 0 saturates and
    # the channel outputs garbage. fill_empty_channels before the QAT avoids it.
    import keras_kd as kd

    x, _ = small_digits
    model = _model_with_an_empty_channel()
    qat = compress.quantize(
        pruning.fill_empty_channels(model) if fill else model, preserve="sparsity"
    )
    qat.compile("adam", keras.losses.MeanSquaredError())
    qat.fit(x, np.zeros((len(x), 3)), epochs=1, batch_size=32, verbose=0)  # trains the ranges
    path = kd.export.to_tflite(qat, str(tmp_path / "m.tflite"), "int8", representative_data=x)
    result = kd.export.verify(
        path, x[:64], np.zeros(64, int), keras_model=qat, runs=1, threads=(1,)
    )
    assert (result["max_abs_diff"] < 0.05) == fill, result["max_abs_diff"]
