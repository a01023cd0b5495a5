"""Tests of keras_kd.nonfinite used alone, in a plain Keras model's own train_step.

The Distiller's use of the guard is tested in tests/test_distiller.py and tests/test_resilience.py.
"""

import numpy as np
import pytest

from keras_kd import keras, nonfinite
from keras_kd._compat import tf


class _Guarded(keras.Model):
    """A plain Keras model whose train_step uses the guard as the module docstring shows."""

    def __init__(self):
        super().__init__()
        self.norm = keras.layers.BatchNormalization()  # state that the forward pass changes
        self.dense = keras.layers.Dense(3)
        self.guard = nonfinite.NonFiniteGuard()

    def call(self, x, training=False):
        return self.dense(self.norm(x, training=training))

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.compiled_loss(y, self(x, training=True))
            loss = self.guard.check(loss, "cross_entropy")
        self.guard.minimize(self.optimizer, loss, self.trainable_variables, tape)
        return {"loss": loss}


def _model(weights=None):
    keras.utils.set_random_seed(0)
    model = _Guarded()
    model(np.zeros((1, 4), np.float32))
    if weights is not None:
        model.set_weights(weights)
    model.compile(
        keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def test_guard_alone_stops_a_plain_model_at_the_nan_batch_with_the_last_finite_state():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    x[32:48] = np.nan  # batch 2 of 4
    model = _model()
    initial = model.get_weights()
    model.guard.watch(model)
    with pytest.raises(FloatingPointError, match="loss term 'cross_entropy' became NaN or Inf"):
        with model.guard.stopping():
            model.fit(x, y, batch_size=16, shuffle=False, verbose=0)

    reference = _model(initial)
    reference.fit(x[:32], y[:32], batch_size=16, shuffle=False, verbose=0)
    after = model.get_weights()
    assert all(np.isfinite(w).all() for w in after)  # the moving statistics were put back
    assert all(np.array_equal(a, b) for a, b in zip(after, reference.get_weights()))


def test_stopping_passes_other_errors_unchanged():
    guard = nonfinite.NonFiniteGuard()
    with pytest.raises(tf.errors.InvalidArgumentError, match="unrelated"):
        with guard.stopping():
            raise tf.errors.InvalidArgumentError(None, None, "unrelated")


@pytest.mark.parametrize("distributed, restored", [(False, 1.0), (True, 5.0)])
def test_watch_copies_the_state_except_under_a_strategy(distributed, restored):
    norm = keras.layers.BatchNormalization()
    norm.build((None, 1))
    variable = norm.moving_mean
    variable.assign([1.0])
    guard = nonfinite.NonFiniteGuard()
    guard.watch(norm, distributed=distributed)
    variable.assign([5.0])
    with pytest.raises(FloatingPointError, match="'gradient of v' became NaN"):
        with guard.stopping():
            nonfinite.check_finite(tf.constant(np.inf), "gradient of v")
    assert float(variable.numpy()[0]) == restored
