"""Tests of keras_kd.compress.depthwise_separable and low_rank."""

import numpy as np
import pytest

from keras_kd import compress, keras

X = np.random.default_rng(0).normal(size=(8, 8, 8, 1)).astype(np.float32)


def _dense_model(rank_of_hidden=None):
    """Flatten(64) -> Dense(32, relu) -> Dense(10); the hidden kernel gets the given exact rank."""
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(32, activation="relu", name="hidden"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    if rank_of_hidden is not None:
        rng = np.random.default_rng(1)
        low = rng.normal(size=(64, rank_of_hidden)) @ rng.normal(size=(rank_of_hidden, 32)) / 8
        model.get_layer("hidden").kernel.assign(low.astype(np.float32))
    return model


def test_depthwise_separable_at_full_rank_reproduces_the_student(student):
    exact = compress.depthwise_separable(student, depth_multiplier=9)  # 3x3 kernels: rank <= 9
    np.testing.assert_allclose(exact(X), student(X), atol=1e-4)
    assert [layer.name for layer in exact.layers][1:4] == [
        "s_block1_depthwise",
        "s_block1",
        "s_pool1",
    ]


def test_depthwise_separable_is_smaller_starts_close_and_trains_in_a_distiller(student, distill):
    slim = compress.depthwise_separable(student)
    assert slim.get_layer("s_block2_depthwise").depthwise_kernel.shape == (3, 3, 8, 1)
    assert slim.get_layer("s_block2").kernel.shape == (1, 1, 8, 16)
    block1 = (3 * 3 * 1 * 8) - (3 * 3 * 1 + 1 * 8)  # kh*kw*cin*cout -> kh*kw*cin + cin*cout
    block2 = (3 * 3 * 8 * 16) - (3 * 3 * 8 + 8 * 16)
    assert slim.count_params() == student.count_params() - block1 - block2
    assert slim.get_layer("s_block2").activation is student.get_layer("s_block2").activation
    distance = np.abs(slim(X) - student(X)).mean()
    assert distance < np.abs(student(X)).mean()  # closer than predicting zeros
    distill(slim)


def test_separable_kernels_is_the_best_rank_one_fit_per_channel():
    kernel = np.random.default_rng(2).normal(size=(3, 3, 2, 5)).astype(np.float32)
    depthwise, pointwise = compress.slimming.separable_kernels(kernel, 1)
    approx = depthwise[:, :, :, 0][..., None] * pointwise[None, None]
    for channel in range(2):
        slice_ = kernel[:, :, channel, :].reshape(9, 5)
        s = np.linalg.svd(slice_, compute_uv=False)
        error = np.linalg.norm(slice_ - approx[:, :, channel, :].reshape(9, 5))
        assert error == pytest.approx(np.sqrt(np.sum(s[1:] ** 2)), rel=1e-4)  # Eckart-Young


@pytest.mark.parametrize("rank", [2, 5])
def test_low_rank_uses_the_asked_rank_and_parameter_count(rank):
    model = _dense_model()
    factorized = compress.low_rank(model, rank=rank, layers=["hidden"])
    assert factorized.get_layer("hidden_low_rank").units == rank
    assert factorized.count_params() == model.count_params() - 64 * 32 + rank * (64 + 32)
    assert factorized.get_layer("hidden").activation is keras.activations.relu


def test_low_rank_at_the_true_rank_reproduces_the_output():
    model = _dense_model(rank_of_hidden=3)
    factorized = compress.low_rank(model, energy=1.0, layers=["hidden"])
    assert factorized.get_layer("hidden_low_rank").units == 3
    np.testing.assert_allclose(factorized(X), model(X), atol=1e-4)


def test_low_rank_energy_picks_the_smallest_rank_keeping_that_energy():
    model = _dense_model()
    s = np.linalg.svd(model.get_layer("hidden").kernel.numpy(), compute_uv=False)
    kept = np.cumsum(s**2) / np.sum(s**2)
    expected = int(np.argmax(kept >= 0.6)) + 1
    assert (
        compress.low_rank(model, energy=0.6, layers=["hidden"]).get_layer("hidden_low_rank").units
        == expected
    )


def test_low_rank_leaves_layers_where_it_would_not_save_parameters():
    model = _dense_model()
    same = compress.low_rank(
        model, rank=10
    )  # logits 32x10: 10*42 > 320; hidden 64x32: 10*96 < 2048
    assert [layer.name for layer in same.layers] == [
        "flatten",
        "hidden_low_rank",
        "hidden",
        "logits",
    ]


def test_low_rank_keeps_the_layer_names_of_a_functional_student_for_feature_taps(student, distill):
    factorized = compress.low_rank(student, rank=2)
    assert factorized.get_layer("s_logits_low_rank").units == 2
    assert factorized.output_shape == student.output_shape
    distill(factorized)


@pytest.mark.parametrize(
    "function, kwargs, message",
    [
        (compress.low_rank, {"rank": 0}, "rank must be an integer >= 1"),
        (compress.low_rank, {"energy": 0.0}, "energy must be in"),
        (compress.low_rank, {"energy": 1.5}, "energy must be a number in"),
        (
            compress.low_rank,
            {"layers": ["s_block1"]},
            r"must name a Dense layer; 's_block1' \(Conv2D\)",
        ),
        (
            compress.depthwise_separable,
            {"depth_multiplier": 0},
            "depth_multiplier must be an integer >= 1",
        ),
        (compress.depthwise_separable, {"layers": ["s_logits"]}, r"'s_logits' \(Dense\) is not"),
    ],
)
def test_slimming_rejects_bad_arguments(student, function, kwargs, message):
    with pytest.raises(ValueError, match=message):
        function(student, **kwargs)
