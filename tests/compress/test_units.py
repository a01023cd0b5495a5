"""Tests of keras_kd.compress.prune_units: smaller models equal to the masked original."""

import numpy as np
import pytest

from keras_kd import compress, keras


def _randomize(model, seed=0):
    """Random weights (and BN statistics) so that no two units tie in importance."""
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.normal(size=w.shape).astype(np.float32) * 0.5
            + (1.0 if "variance" in v.name else 0.0)
            for w, v in zip(model.get_weights(), model.weights)
        ]
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(np.abs(layer.moving_variance.numpy()) + 0.5)
    return model


def _conv_bn_flatten_dense():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(6, 3, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(12, activation="relu", name="hidden")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


def _conv1d_global_pool():
    return keras.Sequential(
        [
            keras.Input((16, 2)),
            keras.layers.Conv1D(8, 3, activation="relu", name="conv1"),
            keras.layers.DepthwiseConv1D(3, use_bias=False, name="depthwise"),
            keras.layers.Conv1D(6, 3, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling1D(name="gap"),
            keras.layers.Dense(4, name="logits"),
        ]
    )


def _importance_order(kernel):
    return np.argsort(-np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0), kind="stable")


def _removed(kernel, fraction):
    units = kernel.shape[-1]
    return np.sort(_importance_order(kernel)[units - int(np.floor(fraction * units)) :])


def _hand_masked(model, fraction, consumers):
    """The original with the input rows of each consumer for the removed units set to zero."""
    masked = keras.models.clone_model(model)
    masked.set_weights(model.get_weights())
    for producer, (consumer, to_rows) in consumers.items():
        removed = _removed(model.get_layer(producer).kernel.numpy(), fraction)
        layer = masked.get_layer(consumer)
        kernel = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel
        rows = to_rows(removed)
        values = kernel.numpy()
        values[..., rows, :] = 0.0
        kernel.assign(values)
    return masked


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_prune_units_equals_the_hand_masked_original_through_bn_pool_and_flatten(fraction):
    model = _randomize(_conv_bn_flatten_dense())
    smaller = compress.prune_units(model, fraction)
    flat = np.arange(3 * 3 * 6).reshape(3, 3, 6)
    masked = _hand_masked(
        model,
        fraction,
        {
            "conv1": ("hidden", lambda removed: flat[..., removed].ravel()),
            "hidden": ("logits", lambda removed: removed),
        },
    )
    assert smaller.get_layer("conv1").filters == 6 - int(6 * fraction)
    assert smaller.get_layer("hidden").units == 12 - int(12 * fraction)
    assert smaller.get_layer("logits").units == 10  # the output layer is never pruned
    assert smaller.count_params() < model.count_params()
    assert smaller.output_shape == model.output_shape
    x = np.random.default_rng(1).normal(size=(16, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(
        smaller(x, training=False), masked(x, training=False), rtol=1e-4, atol=1e-4
    )


def test_prune_units_follows_depthwise_conv1d_and_global_pooling_in_a_sequential_model():
    model = _randomize(_conv1d_global_pool(), seed=3)
    smaller = compress.prune_units(model, 0.5)
    assert [smaller.get_layer(n).output_shape[-1] for n in ("conv1", "depthwise", "conv2")] == [
        4,
        4,
        3,
    ]
    identity = lambda removed: removed  # noqa: E731
    masked = _hand_masked(
        model, 0.5, {"conv1": ("depthwise", identity), "conv2": ("logits", identity)}
    )
    x = np.random.default_rng(2).normal(size=(4, 16, 2)).astype(np.float32)
    np.testing.assert_allclose(smaller(x), masked(x), rtol=1e-4, atol=1e-4)


def test_prune_units_on_the_example_student_trains_in_a_distiller(student, distill):
    smaller = compress.prune_units(student, 0.5)
    assert [smaller.get_layer(n).filters for n in ("s_block1", "s_block2")] == [4, 8]
    assert smaller.output_shape == student.output_shape
    distill(smaller)


def _residual():
    inputs = keras.Input((8, 8, 1))
    a = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="conv_b")(a)
    x = keras.layers.Add(name="add")([a, b])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(8, name="hidden")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def test_prune_units_names_the_merge_and_the_layers_that_can_be_pruned():
    with pytest.raises(ValueError, match=r"'conv_a'.*'add' \(Add\).*layers=\['hidden'\]"):
        compress.prune_units(_residual(), 0.5)
    smaller = compress.prune_units(_residual(), 0.5, layers=["hidden"])
    assert smaller.get_layer("hidden").units == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fraction": 1.0}, "fraction must be a number in"),
        ({"fraction": 0.5, "layers": ["gap"]}, r"'gap' \(GlobalAveragePooling2D\) is not one"),
        ({"fraction": 0.5, "layers": ["logits"]}, "never prunes the output layer"),
        ({"fraction": 0.5, "layers": ["nope"]}, "unknown layers"),
    ],
)
def test_prune_units_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compress.prune_units(_residual(), **kwargs)
