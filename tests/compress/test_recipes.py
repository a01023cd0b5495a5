"""Tests of keras_kd.compress.apply_recipe, parse_recipe, calibrate_ranges' partner float_params."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import compress, keras


@pytest.fixture
def fine_tune(small_digits):
    """A ``fine_tune(model, learning_rate)`` that fits one epoch on labels and records its calls."""
    x, y = small_digits

    def train(model, learning_rate=None):
        train.calls.append((learning_rate, [type(layer).__name__ for layer in model.layers]))
        model.compile(keras.optimizers.Adam(learning_rate or 1e-3), kd.recipes.hard_loss())
        model.fit(x, y, epochs=1, batch_size=64, verbose=0)

    train.calls = []
    return train


@pytest.mark.parametrize(
    "recipe, steps",
    [
        ("prune+qat", ["prune", "qat"]),
        (" cluster + prune ", ["cluster", "prune"]),
        (["qat"], ["qat"]),
    ],
)
def test_parse_recipe_accepts_plus_joined_text_and_lists(recipe, steps):
    assert compress.parse_recipe(recipe) == steps


@pytest.mark.parametrize("recipe", ["", "prune+zip", "prune+prune", [], ["prune", 3], None])
def test_parse_recipe_names_the_bad_recipe(recipe):
    with pytest.raises(ValueError, match=r"recipe must be distinct names from .*received: recipe="):
        compress.parse_recipe(recipe)


def test_apply_recipe_runs_steps_in_fixed_order_and_fine_tunes_after_each(student, fine_tune):
    small = compress.apply_recipe(
        student, "qat+prune", fine_tune, steps=4, sparsity=0.5, qat_learning_rate=1e-4
    )
    (prune_rate, prune_layers), (qat_rate, qat_layers) = fine_tune.calls
    assert prune_rate is None and "PruneLowMagnitude" in prune_layers
    assert qat_rate == 1e-4 and "QuantizeWrapperV2" in qat_layers
    assert compress.is_quantized(small)
    assert compress.sparsity(small)["total"] == pytest.approx(0.5, abs=0.05)
    assert not any(type(layer).__name__ == "PruneLowMagnitude" for layer in student.layers)


def test_apply_recipe_keeps_the_last_wrappers_when_asked(student, fine_tune):
    wrapped = compress.apply_recipe(student, ["prune"], fine_tune, steps=4, strip_last=False)
    assert any(type(layer).__name__ == "PruneLowMagnitude" for layer in wrapped.layers)
    stripped = compress.apply_recipe(student, ["prune"], fine_tune, steps=4)
    assert not any(type(layer).__name__ == "PruneLowMagnitude" for layer in stripped.layers)


def test_apply_recipe_keeps_the_first_and_last_layers_dense_when_asked(student, fine_tune):
    pruned = compress.apply_recipe(
        student, "prune", fine_tune, steps=4, sparsity=0.8, keep_first_last=True
    )
    weighted = [layer for layer in pruned.layers if layer.weights]
    for layer in (weighted[0], weighted[-1]):
        assert np.count_nonzero(layer.get_weights()[0] == 0) == 0, layer.name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"recipe": "prune+zip"}, "recipe must be distinct names"),
        ({"fine_tune": "adam"}, "fine_tune must be callable"),
        ({"steps": 0}, "received: steps=0"),
        ({"steps": True}, "received: steps=True"),
        ({"prune_end": 0.0}, "received: prune_end=0.0"),
    ],
)
def test_apply_recipe_refuses_bad_arguments_before_any_step(student, fine_tune, kwargs, message):
    arguments = {"recipe": "prune", "fine_tune": fine_tune, "steps": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        compress.apply_recipe(student, **arguments)
    assert fine_tune.calls == []


def test_float_params_leaves_out_quantization_ranges(student):
    quantized = compress.quantize(student)
    assert quantized.count_params() > student.count_params()
    assert compress.float_params(quantized) == compress.float_params(student)
    assert compress.float_params(student) == student.count_params()
