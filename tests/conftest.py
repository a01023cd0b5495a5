"""Test setup: the repo root on sys.path (for examples/), two logical CPUs, small shared fixtures."""

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from keras_kd._compat import keras, tf  # noqa: E402

# MirroredStrategy tests need two devices; logical devices must be set before TensorFlow initializes.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

# The longest test files (each 35 to 90 s of one worker), collected first and handed out in this
# order (pytest.ini turns off xdist's reordering by number of tests, which put test_readme.py, two
# tests, near the end): the short files that follow fill in, so no worker runs a long one alone
# at the end.
LONGEST_FIRST = (
    "test_readme.py",
    "test_resilience.py",
    "test_examples.py",
    "test_pipeline.py",
    "compress/test_pruning.py",
    "export/test_converter_process.py",
    "test_replay.py",
    "test_distiller.py",
    "test_training_step.py",
    "test_precision.py",
    "compress/test_low_bit.py",
    "test_foreign_teachers.py",
)


def pytest_collection_modifyitems(items):
    rank = {os.path.join(ROOT, "tests", name): i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(str(item.path), len(rank)))  # stable: the rest as before


@pytest.fixture(scope="session")
def digits():
    """The embedded digits split: ((x_train, y_train), (x_test, y_test))."""
    from keras_kd import data

    return data.load("digits")


def teacher_weights(x, y, width, seed, epochs):
    """Weights of the example CNN teacher at ``width``, seeded, trained on ``(x, y)``."""
    from examples.models import make_teacher

    keras.utils.set_random_seed(seed)
    teacher = make_teacher(x.shape[1:], 10, width=width)
    teacher.compile(
        keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    teacher.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return teacher.get_weights()


@pytest.fixture(scope="session")
def trained_teacher_weights(digits):
    """Weights of the example CNN teacher trained briefly on digits (trained once per session)."""
    (x, y), _ = digits
    return teacher_weights(x, y, width=16, seed=0, epochs=8)


@pytest.fixture
def teacher(digits, trained_teacher_weights):
    """A fresh copy of the trained digits teacher."""
    from examples.models import make_teacher

    (x, _), _ = digits
    model = make_teacher(x.shape[1:], 10, width=16)
    model.set_weights(trained_teacher_weights)
    return model


@pytest.fixture
def student(digits):
    """A fresh, seeded example student for digits."""
    from examples.models import make_student

    (x, _), _ = digits
    keras.utils.set_random_seed(1)
    return make_student(x.shape[1:], 10, width=8)


def weights_equal(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))
