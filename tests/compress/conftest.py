"""Fixtures of the compression tests: a digits subset, a tiny teacher, a one-call distillation."""

import pytest

import keras_kd as kd
from keras_kd import keras


@pytest.fixture
def small_digits(digits):
    """256 training examples of digits (float32 (N, 8, 8, 1), int64 labels)."""
    (x, y), _ = digits
    return x[:256], y[:256]


@pytest.fixture
def tiny_teacher():
    """An untrained linear teacher: compression tests need its soft targets, not its accuracy."""
    keras.utils.set_random_seed(2)
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)], name="teacher"
    )


@pytest.fixture
def distill(small_digits, tiny_teacher):
    """``distill(student, epochs=1, run_eagerly=True, **fit_kwargs)`` fits a Distiller.

    Eager by default because tracing costs more than 16 tiny steps; tests that need the compiled
    train step pass ``run_eagerly=False``.
    """

    def _distill(student, epochs=1, run_eagerly=True, **fit_kwargs):
        x, y = small_digits
        distiller = kd.Distiller(
            student=student, teacher=tiny_teacher, losses=[kd.losses.LogitsKD(4.0)], alpha=0.1
        )
        distiller.compile(
            keras.optimizers.Adam(3e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            run_eagerly=run_eagerly,
        )
        distiller.fit(x, y, epochs=epochs, batch_size=32, verbose=0, **fit_kwargs)
        return distiller

    return _distill
