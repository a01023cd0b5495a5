"""Tests of keras_kd.model_callbacks: callbacks a model carries, added by its fit and the Distiller's."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras, model_callbacks


class _Counting(keras.callbacks.Callback):
    """Counts the training batches it sees; remembers the log_dir it was made with."""

    def __init__(self, log_dir=None):
        super().__init__()
        self.log_dir, self.batches = log_dir, 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def _linear(seed, name):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)], name=name)


def _compiled(name="model"):
    model = _linear(0, name)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 3, 64)


def _mark(model, made):
    """Marks ``model``; each call of its maker appends the new callback to ``made``."""

    def make_callbacks(marked, log_dir):
        assert marked is model
        made.append(_Counting(log_dir))
        return [made[-1]]

    return model_callbacks.require_callbacks(model, make_callbacks)


@pytest.mark.parametrize("how", ["keyword", "positional", "none"])
def test_fit_of_a_marked_model_adds_a_fresh_required_callback_each_time(how):
    made, seen = [], []
    other = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(batch)
    )
    model = _mark(_compiled(), made)
    x, y = _data()
    for _ in range(2):
        if how == "keyword":
            model.fit(x, y, batch_size=32, verbose=0, callbacks=[other])
        elif how == "positional":
            model.fit(x, y, 32, 1, 0, [other])
        else:
            model.fit(x, y, batch_size=32, verbose=0)
    assert [c.batches for c in made] == [2, 2]
    assert len(seen) == (0 if how == "none" else 4)


def test_a_callback_of_the_required_type_given_to_fit_is_kept_and_not_doubled():
    made, mine = [], _Counting()
    model = _mark(_compiled(), made)
    model.fit(*_data(), batch_size=32, verbose=0, callbacks=[mine])
    assert mine.batches == 2 and made[0].batches == 0


def test_add_required_callbacks_passes_the_tensorboard_log_dir_and_leaves_unmarked_models(tmp_path):
    made = []
    board = keras.callbacks.TensorBoard(str(tmp_path))
    given = [board]
    assert model_callbacks.add_required_callbacks(_mark(_compiled(), made), given) == [
        board,
        made[0],
    ]
    assert made[0].log_dir == str(tmp_path) and given == [board]
    assert model_callbacks.add_required_callbacks(_compiled(), given) == [board]
    assert model_callbacks.add_required_callbacks(_compiled()) == []


def test_distiller_fit_adds_the_callbacks_its_student_requires():
    made = []
    student = _mark(_linear(1, "student"), made)
    distiller = kd.Distiller(student, _linear(2, "teacher"))
    distiller.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    distiller.fit(*_data(), batch_size=32, verbose=0)
    assert len(made) == 1 and made[0].batches == 2
    assert made[0].model is distiller


def test_a_marked_model_saves_and_loads_as_a_plain_model(tmp_path):
    model = _mark(_compiled(), [])
    path = str(tmp_path / "marked.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), model.get_weights()))
    assert len(model.weights) == 2


@pytest.mark.parametrize(
    "model, make_callbacks, error, message",
    [
        ("model", lambda m, d: [], TypeError, "model must be a keras.Model"),
        (None, "UpdatePruningStep", ValueError, "make_callbacks must be a callable"),
    ],
)
def test_require_callbacks_rejects_bad_arguments(model, make_callbacks, error, message):
    with pytest.raises(error, match=message):
        model_callbacks.require_callbacks(model or _compiled(), make_callbacks)
