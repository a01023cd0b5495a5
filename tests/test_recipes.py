"""Training recipes: cosine Adam, augmentation, classifier training and patient teaching."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras, recipes
from keras_kd.report import describe_machine


def _mlp(input_shape, classes=10, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(classes),
        ]
    )


def test_steps_counts_partial_batches():
    assert recipes.steps(5000, 30, 128) == 30 * 40
    assert recipes.steps(1, 1, 128) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_examples": 0, "epochs": 1, "batch_size": 1}, "received: num_examples=0"),
        ({"num_examples": 5, "epochs": 1.5, "batch_size": 1}, "received: epochs=1.5"),
        ({"num_examples": 5, "epochs": 1, "batch_size": True}, "received: batch_size=True"),
    ],
)
def test_steps_rejects_bad_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recipes.steps(**kwargs)


def test_cosine_adam_decays_to_zero():
    optimizer = recipes.cosine_adam(1e-2, total_steps=100)
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    assert float(schedule(0)) == pytest.approx(1e-2)
    assert float(schedule(50)) == pytest.approx(5e-3, rel=1e-4)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)


def test_scheduled_adam_is_cosine_adam_or_a_constant_rate():
    cosine = recipes.scheduled_adam(1e-2, 100, "cosine").get_config()["learning_rate"]
    assert cosine == recipes.cosine_adam(1e-2, 100).get_config()["learning_rate"]
    constant = recipes.scheduled_adam(1e-2, 100, "constant").get_config()["learning_rate"]
    assert constant == pytest.approx(1e-2)
    with pytest.raises(ValueError, match="received: schedule='step'"):
        recipes.scheduled_adam(1e-2, 100, "step")


@pytest.mark.parametrize("rate", [0, -1.0, float("inf"), "fast"])
def test_cosine_adam_rejects_bad_learning_rate(rate):
    with pytest.raises(ValueError, match=f"received: learning_rate={rate!r}"):
        recipes.cosine_adam(rate, 10)


@pytest.mark.parametrize("shape", [(8, 8, 1), (40, 1)])
def test_augmentation_keeps_shape_and_is_identity_at_inference(shape):
    augment = recipes.image_augmentation(shape, seed=1)
    x = np.random.default_rng(0).random((4, *shape)).astype("float32")
    np.testing.assert_array_equal(augment(x, training=False).numpy(), x)
    moved = augment(x, training=True).numpy()
    assert moved.shape == x.shape
    assert not np.array_equal(moved, x)


def test_augmentation_rejects_other_ranks():
    with pytest.raises(ValueError, match=r"received: input_shape=\(10,\)"):
        recipes.image_augmentation((10,))


def test_train_classifier_learns_digits_with_and_without_augmentation(digits):
    (x, y), test = digits
    for augment, floor in ((False, 0.85), (True, 0.6)):  # flips and shifts make digits harder
        model = _mlp(x.shape[1:])
        history = recipes.train_classifier(
            model, x, y, epochs=8, batch_size=64, augment=augment, validation_data=test
        )
        assert history.history["val_accuracy"][-1] > floor
        assert model.evaluate(*test, verbose=0)[1] == pytest.approx(
            history.history["val_accuracy"][-1], abs=1e-6
        )


def test_patient_distiller_matches_functions_on_shared_views(digits):
    (x, y), test = digits
    teacher = _mlp(x.shape[1:], seed=1)
    recipes.train_classifier(teacher, x, y, epochs=5, batch_size=64)
    student = _mlp(x.shape[1:], seed=2)
    distiller = recipes.patient_distiller(student, teacher, len(x), epochs=4, batch_size=64)
    assert distiller.alpha == 0.0
    assert distiller.augment.mixes_examples
    distiller.fit(x, epochs=4, batch_size=64, verbose=0)  # no labels needed
    assert distiller.teacher_cached is False  # a new view every step: the teacher runs live
    assert distiller.evaluate(*test, verbose=0)[1] > 0.5


def test_describe_machine_names_the_cpu():
    machine = describe_machine()
    assert machine["cpu"] and machine["cores"] >= 1
    assert isinstance(machine["amx"], bool)


def test_recipes_reachable_from_the_package():
    assert kd.recipes.patient_distiller is recipes.patient_distiller


def test_hard_loss_is_cross_entropy_on_logits():
    logits, labels = np.array([[2.0, 0.0, -1.0]], "float32"), np.array([0])
    expected = -np.log(np.exp(2.0) / np.exp([2.0, 0.0, -1.0]).sum())
    assert float(recipes.hard_loss()(labels, logits)) == pytest.approx(expected, rel=1e-5)
    assert recipes.hard_loss() is not recipes.hard_loss()  # a fresh loss per call


def test_train_classifier_keeps_a_constant_rate_and_runs_callbacks_when_asked():
    x = np.random.default_rng(0).random((64, 4, 4, 1)).astype("float32")
    y = np.arange(64) % 3
    model = _mlp((4, 4, 1), classes=3)
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    recipes.train_classifier(
        model, x, y, epochs=2, batch_size=32, schedule="constant", callbacks=[callback]
    )
    assert seen == [0, 1]
    assert float(keras.backend.get_value(model.optimizer.learning_rate)) == pytest.approx(3e-3)


@pytest.mark.parametrize("schedule", ["linear", None])
def test_train_classifier_refuses_an_unknown_schedule(schedule):
    with pytest.raises(ValueError, match=f"received: schedule={schedule!r}"):
        recipes.train_classifier(_mlp((4,)), np.zeros((4, 4)), np.zeros(4), 1, schedule=schedule)


def test_train_classifier_traces_the_step_once(digits):
    (x, y), _ = digits
    model = _mlp(x.shape[1:])
    recipes.train_classifier(model, x[:64], y[:64], epochs=1, batch_size=32)
    assert model.train_function.experimental_get_tracing_count() == 1  # Keras alone: 2
