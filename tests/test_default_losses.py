"""The Distiller's default losses: DIST's temperature follows the labeled examples per class."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf

MANY = kd.losses.MANY_EXAMPLES_PER_CLASS


def _setting(loss):
    return type(loss), loss.beta, loss.gamma, loss.temperature


@pytest.mark.parametrize(
    "per_class, expected",
    [(None, (2.0, 2.0, 4.0)), (0, (2.0, 2.0, 4.0)), (MANY - 0.5, (2.0, 2.0, 4.0)),
     (MANY, (1.0, 1.0, 1.0)), (60_000, (1.0, 1.0, 1.0))],
)  # fmt: skip
def test_defaults_soften_less_with_many_examples_per_class(per_class, expected):
    (loss,), alpha = kd.losses.defaults(examples_per_class=per_class)
    assert _setting(loss) == (kd.losses.DIST, *expected) and alpha == 0.5


@pytest.mark.parametrize("value", [-1, float("nan"), "many"])
def test_defaults_reject_a_bad_examples_per_class(value):
    with pytest.raises(ValueError, match=f"received: examples_per_class={value!r}"):
        kd.losses.defaults(examples_per_class=value)


def _pair(classes=2):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    student = keras.Model(inputs, keras.layers.Dense(classes)(inputs))
    teacher = keras.Model(inputs, keras.layers.Dense(classes)(keras.layers.Dense(8)(inputs)))
    return student, teacher


def _data(rows, classes=2, unlabeled=0):
    x = np.random.default_rng(0).normal(size=(rows, 4)).astype("float32")
    y = np.arange(rows) % classes
    y[:unlabeled] = -1  # transfer-set rows carry no label
    return x, y


def _first_fit(x, y=None, **kwargs):
    student, teacher = _pair()
    distiller = kd.Distiller(student, teacher, **kwargs)
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    distiller.fit(x, y, batch_size=1000, epochs=1, verbose=0)
    return distiller


def test_first_fit_on_many_labels_per_class_switches_the_default_to_dist_at_t1():
    distiller = _first_fit(*_data(2 * MANY))
    assert _setting(distiller.distillation_losses[0]) == (kd.losses.DIST, 1.0, 1.0, 1.0)
    assert distiller.default_losses_reason == (
        "labeled examples per class: 2,000; default loss DIST(beta=1, gamma=1, temperature=1), "
        "alpha=0.5"
    )
    saved = kd.Distiller.from_config(distiller.get_config())
    assert _setting(saved.distillation_losses[0]) == (kd.losses.DIST, 1.0, 1.0, 1.0)
    # The choice is made once: a later fit on fewer labels keeps it.
    distiller.fit(*_data(100), epochs=1, verbose=0)
    assert distiller.distillation_losses[0].temperature == 1.0


def test_unlabeled_rows_do_not_count_toward_the_rule():
    distiller = _first_fit(*_data(2 * MANY, unlabeled=2))
    assert _setting(distiller.distillation_losses[0]) == (kd.losses.DIST, 2.0, 2.0, 4.0)
    assert distiller.default_losses_reason.startswith("labeled examples per class: 1,999;")


def test_a_dataset_keeps_the_few_labels_default_and_says_the_count_is_unknown():
    x, y = _data(2 * MANY)
    distiller = _first_fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(1000))
    assert distiller.distillation_losses[0].temperature == 4.0
    assert distiller.default_losses_reason.startswith(
        "labeled examples per class: unknown (no array labels);"
    )


def test_given_losses_are_never_changed_by_the_rule():
    distiller = _first_fit(*_data(2 * MANY), losses=[kd.losses.DIST(2.0, 2.0, 4.0)], alpha=0.5)
    assert distiller.distillation_losses[0].temperature == 4.0
    assert distiller.default_losses_reason is None
