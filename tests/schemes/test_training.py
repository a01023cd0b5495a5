"""Tests of the arguments every scheme shares: checked before training, one optimizer per model."""

import numpy as np
import pytest

from keras_kd import keras, schemes
from keras_kd._compat import tf
from keras_kd.schemes import _training


def _tiny():
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )


_SHARED_ADAM = keras.optimizers.Adam()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"train": "digits"}, "train must be a tf.data.Dataset of .* or an .* tuple of arrays"),
        (
            {"train": (np.zeros((4, 8, 8, 1)), np.zeros(3))},
            r"equal, non-zero length, received: train=<arrays of lengths \[4, 3\]>",
        ),
        ({"train": (np.zeros((0, 8, 8, 1)), np.zeros(0))}, "non-zero length"),
        ({"train": tf.data.Dataset.from_tensor_slices(np.zeros((4, 2)))}, "element_spec"),
        ({"validation_data": (np.zeros((2, 8, 8, 1)),)}, "validation_data must be"),
        ({"epochs": 0}, r"epochs must be an integer >= 1, received: epochs=0"),
        ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
        ({"optimizer": "adamw_typo"}, "optimizer is not a known optimizer name"),
        ({"optimizer": lambda: "adam"}, "optimizer must return a Keras optimizer"),
        ({"optimizer": lambda: _SHARED_ADAM}, "returned the same instance twice"),
        ({"optimizer": 3}, "optimizer must be a name, a callable"),
        ({"loss": keras.losses.SparseCategoricalCrossentropy()}, "expects probabilities"),
        ({"callbacks": ["early_stopping"]}, "callbacks must be Keras callbacks"),
        ({"verbose": 5}, "verbose must be 0, 1, 2"),
    ],
)
def test_every_scheme_checks_the_common_arguments_before_training(digits, kwargs, message):
    (x, y), _ = digits
    arguments = {"train": (x[:8], y[:8]), **kwargs}
    cohort = [_tiny(), _tiny()]
    before = [m.get_weights() for m in cohort]
    with pytest.raises(ValueError, match=message):
        schemes.mutual_learning(
            cohort,
            epochs=kwargs.get("epochs", 1),
            **{k: v for k, v in arguments.items() if k != "epochs"},
        )
    assert all(
        np.array_equal(a, b) for m, w in zip(cohort, before) for a, b in zip(m.get_weights(), w)
    )


@pytest.mark.parametrize(
    "optimizer", ["adam", lambda: keras.optimizers.Adam(0.01), keras.optimizers.Adam(0.01)]
)
def test_each_model_gets_its_own_optimizer(digits, optimizer):
    (x, y), _ = digits
    run = _training.settings((x, y), optimizer=optimizer)
    first, second = run.new_optimizer(), run.new_optimizer()
    assert first is not second and first is not optimizer
    assert type(first) is keras.optimizers.Adam
    if not isinstance(optimizer, str):
        assert float(first.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("labels", ["sparse", "one_hot", "dataset"])
def test_accuracy_matches_keras_evaluate(digits, labels):
    (x, y), (xt, yt) = digits
    model = _tiny()
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    expected = model.evaluate(xt, yt, verbose=0)[1]
    data = (xt, yt)
    if labels == "one_hot":
        data = (xt, keras.utils.to_categorical(yt, 10))
    elif labels == "dataset":
        data = tf.data.Dataset.from_tensor_slices((xt, yt)).batch(50)
    assert _training.accuracy(model, data, batch_size=64) == pytest.approx(expected, abs=1e-6)
