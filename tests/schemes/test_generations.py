"""Tests of born_again, teacher_assistant, label_refinery: what trains, in which order, when."""

import numpy as np
import pytest

from keras_kd import keras, schemes
from keras_kd import losses as kd_losses
from keras_kd.schemes import _training
from tests.conftest import weights_equal


def _tiny(seed=None, classes=10, width=16):
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(classes),
        ],
        name="tiny",
    )


@pytest.fixture
def record_distillers(monkeypatch):
    """Replaces the schemes' Distiller by one recording (teacher, student) in creation order."""
    made = []

    class Recording(_training.Distiller):
        def __init__(self, student, teacher, **kwargs):
            made.append((teacher, student))
            super().__init__(student=student, teacher=teacher, **kwargs)

    monkeypatch.setattr(_training, "Distiller", Recording)
    return made


def test_born_again_distills_each_generation_from_the_previous(
    digits, teacher, record_distillers, tmp_path
):
    (x, y), (xt, yt) = digits
    result = schemes.born_again(teacher, _tiny, (x[:256], y[:256]), generations=2, epochs=1)
    assert len(result.models) == 2 and len(result.histories) == 2
    assert result.student is result.models[-1] and result.generations == result.models
    assert record_distillers == [(teacher, result.models[0])] + list(
        zip(result.models, result.models[1:])
    )

    ensemble = result.extras["ensemble"]
    assert result.ensemble is ensemble
    probs = [keras.activations.softmax(g(xt)).numpy() for g in result.models]
    np.testing.assert_allclose(
        np.exp(ensemble.predict(xt, verbose=0)), np.mean(probs, axis=0), rtol=1e-4, atol=1e-6
    )
    ensemble.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    loss, accuracy = ensemble.evaluate(xt, yt, verbose=0)
    assert np.isfinite(loss) and accuracy == pytest.approx(
        _training.accuracy(ensemble, (xt, yt)), abs=1e-6
    )
    ensemble.save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(
        loaded.predict(xt[:16], verbose=0), ensemble.predict(xt[:16], verbose=0), rtol=1e-5
    )


def test_born_again_rejects_bad_arguments_before_training(digits, teacher, record_distillers):
    (x, y), _ = digits
    train = (x[:8], y[:8])
    shared = _tiny(0)
    cases = [
        (
            {"make_model": _tiny, "generations": 0},
            r"generations must be an integer >= 1, received: generations=0",
        ),
        ({"make_model": "tiny", "generations": 2}, "make_model must be a callable"),
        ({"make_model": lambda: shared, "generations": 2}, "same model object"),
        (
            {"make_model": lambda: _tiny(classes=7), "generations": 1},
            r"generation 1 'tiny' outputs shape \(None, 7\) but teacher 'teacher' outputs shape "
            r"\(None, 10\)",
        ),
        ({"make_model": _tiny, "generations": 1, "epochs": 0}, "epochs must be an integer >= 1"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            schemes.born_again(teacher=teacher, train=train, **kwargs)
    # The earlier argument order (make_model, teacher, generations, train) fails loudly.
    with pytest.raises(TypeError, match="teacher must be a keras.Model"):
        schemes.born_again(_tiny, teacher, 2, train)
    assert not record_distillers


def test_teacher_assistant_trains_the_chain_in_order(digits, teacher, record_distillers):
    (x, y), _ = digits
    big, medium, student = _tiny(1, width=32), _tiny(2, width=16), _tiny(3, width=8)
    before = [m.get_weights() for m in (big, medium, student)]
    fresh_lists = []

    def callbacks():  # a factory: called once per fit, in chain order
        fresh_lists.append([keras.callbacks.History()])
        return fresh_lists[-1]

    result = schemes.teacher_assistant(
        teacher, [big, medium], student, (x[:128], y[:128]), epochs=1, callbacks=callbacks
    )
    assert record_distillers == [(teacher, big), (big, medium), (medium, student)]
    assert result.student is student and result.models == [big, medium, student]
    assert result.assistants == [big, medium] and len(result.histories) == 3
    assert all(
        not weights_equal(m.get_weights(), w) for m, w in zip((big, medium, student), before)
    )
    assert len(fresh_lists) == 3 and len({id(c[0]) for c in fresh_lists}) == 3
    assert [lists[0].model.student for lists in fresh_lists] == [big, medium, student]


@pytest.mark.parametrize(
    "assistants, student_classes, message",
    [
        ([], 10, "assistants must hold at least one model"),
        (
            "ok",
            7,
            r"student 'tiny' outputs shape \(None, 7\) but teacher 'teacher' outputs shape "
            r"\(None, 10\)",
        ),
    ],
)
def test_teacher_assistant_rejects_bad_chains_before_training(
    digits, teacher, record_distillers, assistants, student_classes, message
):
    (x, y), _ = digits
    assistants = [_tiny(1)] if assistants == "ok" else assistants
    with pytest.raises(ValueError, match=message):
        schemes.teacher_assistant(
            teacher, assistants, _tiny(2, classes=student_classes), (x[:8], y[:8])
        )
    assert not record_distillers


@pytest.mark.parametrize(
    "scripted, patience, max_rounds, trained, best",
    [
        ([0.5, 0.6, 0.55, 0.9], 1, 3, 3, 1),  # stops at the first round that does not improve
        ([0.5, 0.6, 0.55, 0.9], 2, 3, 4, 3),  # patience 2 tolerates one such round
        ([0.5, 0.6, 0.7, 0.8], 1, 2, 3, 2),  # always improving: max_rounds refinement rounds
        ([0.5, 0.5, 0.9], 1, 3, 2, 0),  # equal is not an improvement; the earliest best wins
    ],
)
def test_label_refinery_stops_when_validation_stops_improving(
    digits, monkeypatch, record_distillers, scripted, patience, max_rounds, trained, best
):
    (x, y), (xt, yt) = digits
    scores = iter(scripted)
    monkeypatch.setattr(_training, "accuracy", lambda model, data, batch_size=256: next(scores))
    # Training itself is not under test here: each fit only reports the names of its loss terms.
    monkeypatch.setattr(
        _training.Settings, "fit", lambda self, model, **kwargs: {m.name: [] for m in model.metrics}
    )
    result = schemes.label_refinery(
        _tiny,
        (x[:64], y[:64]),
        (xt[:32], yt[:32]),
        max_rounds=max_rounds,
        patience=patience,
        epochs=1,
        batch_size=64,
    )
    assert len(result.models) == len(result.histories) == trained
    assert result.extras["val_accuracies"] == scripted[:trained]
    assert result.extras["best_round"] == best and result.student is result.models[best]
    assert result.best_model is result.student and result.student_index == best
    # Each refinement round learns from the round before it, never from the labels alone, with
    # the Distiller's measured default loss.
    assert record_distillers == list(zip(result.models, result.models[1:]))
    default_loss = kd_losses.defaults()[0][0].name
    assert all(default_loss in history for history in result.histories[1:])
    assert default_loss not in result.histories[0]


def test_label_refinery_stops_when_training_cannot_change_the_model(digits):
    """Every round is the same seeded model, frozen by a zero learning rate: stops after round 1."""
    (x, y), (xt, yt) = digits

    def make_model():
        return _tiny(0)

    result = schemes.label_refinery(
        make_model,
        (x[:64], y[:64]),
        (xt, yt),
        max_rounds=5,
        epochs=1,
        optimizer=lambda: keras.optimizers.SGD(0.0),
    )
    accuracies = result.extras["val_accuracies"]
    assert len(result.models) == 2 and accuracies[0] == accuracies[1]
    assert result.extras["best_round"] == 0
    model = result.models[0]
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    assert accuracies[0] == pytest.approx(model.evaluate(xt, yt, verbose=0)[1], abs=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_rounds": 0}, "max_rounds must be an integer >= 1"),
        ({"patience": 0}, "patience must be an integer >= 1"),
        ({"validation_data": ([1, 2], [1])}, "validation_data must hold x and y of equal"),
        ({"validation_data": None}, "validation_data is required"),
        ({"make_model": None}, "make_model must be a callable"),
        ({"make_model": lambda: "model"}, "make_model must return a keras.Model"),
    ],
)
def test_label_refinery_rejects_bad_arguments(digits, kwargs, message):
    (x, y), (xt, yt) = digits
    arguments = {
        "make_model": _tiny,
        "train": (x[:8], y[:8]),
        "validation_data": (xt[:8], yt[:8]),
        "max_rounds": 2,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        schemes.label_refinery(**arguments)
