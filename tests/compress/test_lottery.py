"""Tests of keras_kd.compress.prune_iteratively and lottery_ticket, with Distiller and plain fits."""

import numpy as np
import pytest

from keras_kd import compress, keras
from keras_kd.compress import _common

KERNELS = ("s_block1", "s_block2", "s_logits")


def _kernels(model):
    """{layer_name: kernel} of a plain or pruning-wrapped model."""
    found = {}
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, _common.PruneLowMagnitude) else layer
        if inner.name in KERNELS:
            found[inner.name] = inner.kernel.numpy().copy()
    return found


@pytest.fixture(params=["distiller", "plain_keras"])
def train(request, distill, small_digits):
    """One epoch of training as a train_fn does it: a Distiller's fit, or a user's plain Keras
    ``model.compile`` and ``model.fit`` with no callbacks named (the model carries tfmot's)."""
    if request.param == "distiller":
        return distill

    def plain_keras(model):
        model.compile(
            keras.optimizers.Adam(3e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(*small_digits, epochs=1, batch_size=32, verbose=0)

    return plain_keras


def _recording_train_fn(train, seen):
    """A train_fn that records the kernels it receives, then trains the model for one epoch."""

    def train_fn(model):
        seen.append(_kernels(model))
        train(model)

    return train_fn


def test_prune_iteratively_removes_a_fraction_of_the_rest_each_round_and_holds_the_mask(
    student, train
):
    seen = []
    result = compress.prune_iteratively(
        student, _recording_train_fn(train, seen), fraction_per_round=0.3, rounds=2
    )
    for round_index, kernels in enumerate(seen, start=1):
        for kernel in kernels.values():
            assert np.mean(kernel == 0) == pytest.approx(1 - 0.7**round_index, abs=0.02)
    final = _kernels(result)
    for name, kernel in final.items():
        assert np.mean(kernel == 0) == pytest.approx(1 - 0.7**2, abs=0.02)
        assert np.all(kernel[seen[1][name] == 0] == 0)  # the mask held while train_fn trained
        assert not np.array_equal(kernel, seen[1][name])  # and the survivors were trained
    assert not any(isinstance(layer, _common.PruneLowMagnitude) for layer in result.layers)


def test_lottery_ticket_rewinds_survivors_to_the_initial_weights(student, train):
    initial = student.get_weights()
    initial_kernels = _kernels(student)
    train(student)  # the trained dense network
    trained = _kernels(student)
    seen = []
    ticket = compress.lottery_ticket(
        student, initial, _recording_train_fn(train, seen), target_sparsity=0.75, rounds=2
    )
    assert len(seen) == 2
    for round_index, kernels in enumerate(seen, start=1):
        for name, kernel in kernels.items():
            survivors = kernel != 0
            assert np.mean(~survivors) == pytest.approx(1 - 0.25 ** (round_index / 2), abs=0.02)
            np.testing.assert_array_equal(kernel[survivors], initial_kernels[name][survivors])
    for name, kernel in seen[0].items():  # round 1's mask keeps the largest trained weights
        assert np.abs(trained[name][kernel != 0]).min() >= np.abs(trained[name][kernel == 0]).max()
    assert compress.sparsity(ticket)["total"] == pytest.approx(0.75, abs=0.02)


def test_lottery_ticket_random_control_redraws_the_survivors(student):
    seen = []
    compress.lottery_ticket(
        student,
        student.get_weights(),
        lambda m: seen.append(_kernels(m)),
        0.5,
        rounds=1,
        rewind_to="random",
    )
    for name, kernel in seen[0].items():
        survivors = kernel != 0
        assert np.mean(~survivors) == pytest.approx(0.5, abs=0.02)
        assert not np.allclose(kernel[survivors], _kernels(student)[name][survivors])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"fraction_per_round": 0.0}, ValueError, r"fraction_per_round must be a number in \(0"),
        ({"fraction_per_round": 1.0}, ValueError, r"fraction_per_round must be a number in \(0"),
        ({"rounds": 0}, ValueError, "rounds must be an integer >= 1"),
        ({"train_fn": "fit"}, TypeError, "train_fn must be a callable"),
        ({"layers": ["nope"]}, ValueError, "unknown layers"),
    ],
)
def test_prune_iteratively_rejects_bad_arguments(student, kwargs, error, message):
    arguments = {"train_fn": lambda model: None, **kwargs}
    with pytest.raises(error, match=message):
        compress.prune_iteratively(student, **arguments)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_sparsity": 0.0}, r"target_sparsity must be a number in \(0, 1\)"),
        ({"rewind_to": "late"}, "rewind_to must be one of"),
        ({"initial_weights": []}, "initial_weights must be model.get_weights"),
    ],
)
def test_lottery_ticket_rejects_bad_arguments(student, kwargs, message):
    arguments = {"initial_weights": student.get_weights(), "train_fn": lambda model: None, **kwargs}
    with pytest.raises(ValueError, match=message):
        compress.lottery_ticket(student, **arguments)


def test_hold_mask_never_prunes_and_round_trips():
    schedule = compress.lottery.HoldMask(0.25)
    should_prune, level = schedule(10)
    assert not bool(should_prune) and float(level) == 0.25
    wrapper = _common.PruneLowMagnitude(keras.layers.Dense(3), pruning_schedule=schedule)
    restored = _common.PruneLowMagnitude.from_config(wrapper.get_config())
    assert isinstance(restored.pruning_schedule, compress.lottery.HoldMask)
    assert restored.pruning_schedule.sparsity == 0.25
