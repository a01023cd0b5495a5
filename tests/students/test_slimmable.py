"""Tests of keras_kd.students slimmable layers, SlimmableModel and at_width."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd import students as st

WIDTHS = (0.25, 0.5, 0.75, 1.0)


def _expected_params(width, base=8, classes=10, channels_in=1):
    """The parameter count of make_slimmable_cnn(width=base) at ``width``, written out by hand."""
    c1 = max(1, int(np.floor(base * width + 0.5)))
    c2 = max(1, int(np.floor(2 * base * width + 0.5)))
    conv1 = 3 * 3 * channels_in * c1  # no bias: batch normalization follows
    conv2 = 3 * 3 * c1 * c2
    norms = 4 * c1 + 4 * c2  # gamma, beta, moving mean, moving variance
    logits = c2 * classes + classes
    return conv1 + conv2 + norms + logits


@pytest.fixture(scope="module")
def trained(digits):
    """A slimmable CNN trained briefly by the sandwich rule on 600 digits, then calibrated."""
    (x, y), _ = digits
    keras.utils.set_random_seed(5)
    model = st.make_slimmable_cnn((8, 8, 1), 10, width=8, widths=WIDTHS)
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit(x[:600], y[:600], epochs=4, batch_size=32, verbose=0)
    model.calibrate_batch_norm(x[:600])
    return model, history.history


@pytest.mark.parametrize("width", WIDTHS)
def test_at_width_has_the_width_parameter_count_and_predicts_like_the_slimmable_model(
    trained, digits, width
):
    model, _ = trained
    _, (x_test, _) = digits
    plain = st.at_width(model, width)
    slimmable_types = (st.SlimmableConv2D, st.SlimmableDense, st.SwitchableBatchNormalization)
    assert not any(isinstance(layer, slimmable_types) for layer in plain.layers)
    assert plain.count_params() == _expected_params(width)
    np.testing.assert_allclose(
        plain.predict(x_test[:64], verbose=0),
        model(x_test[:64], training=False, width=width).numpy(),
        atol=1e-5,
    )


def test_width_macs_grow_with_the_width(trained):
    model, _ = trained
    macs = model.width_macs()
    assert macs == sorted(macs) and len(set(macs)) == len(macs)
    c1, c2 = 8, 16
    assert macs[-1] == 8 * 8 * c1 * 9 + 4 * 4 * c2 * 9 * c1 + c2 * 10


def test_sandwich_training_lowers_the_loss_and_every_width_beats_chance(trained, digits):
    model, history = trained
    _, (x_test, y_test) = digits
    assert history["loss"][-1] < history["loss"][0]
    report = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert all(report[f"width_{w:g}_accuracy"] > 0.25 for w in WIDTHS), report
    assert report["width_1_accuracy"] > 0.5, report


def test_calibration_sets_the_exact_batch_statistics(trained, digits):
    model, _ = trained
    (x, _), _ = digits
    features = model.chain[0](x[:600], width=0.5).numpy()
    norm = model.chain[1].norms[WIDTHS.index(0.5)]
    np.testing.assert_allclose(norm.moving_mean.numpy(), features.mean(axis=(0, 1, 2)), atol=1e-5)
    np.testing.assert_allclose(
        norm.moving_variance.numpy(), features.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-6
    )


def test_config_and_save_load_round_trip(trained, digits, tmp_path):
    model, _ = trained
    _, (x_test, _) = digits
    clone = st.SlimmableModel.from_config(model.get_config())
    names = [layer.name for layer in model.chain]
    assert clone.widths == model.widths and [layer.name for layer in clone.chain] == names
    path = str(tmp_path / "slim.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.width_logits(x_test[:32]), model.width_logits(x_test[:32]))


def test_a_narrow_width_exports_and_runs_in_litert(trained, digits, tmp_path):
    model, _ = trained
    _, (x_test, y_test) = digits
    plain = st.at_width(model, 0.25)
    path = kd.export.to_tflite(plain, str(tmp_path / "quarter.tflite"))
    report = kd.export.verify(
        path, x_test[:64], y_test[:64], keras_model=plain, runs=1, threads=(1,)
    )
    assert report["max_abs_diff"] < 1e-4 and report["agreement"] == 1.0


def test_slimmable_layers_slice_their_weights():
    keras.utils.set_random_seed(6)
    dense = st.SlimmableDense(8)
    x = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    full = dense(x).numpy()
    half = dense(x[:, :3], width=0.5).numpy()
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(half, x[:, :3] @ kernel[:3, :4] + bias[:4], atol=1e-6)
    np.testing.assert_allclose(full, x @ kernel + bias, atol=1e-6)
    config = st.SlimmableDense.from_config(dense.get_config()).get_config()
    assert config["slim_output"] is True and config["units"] == 8


@pytest.mark.parametrize("width", [0.0, 1.5, -0.25, "half", True])
def test_widths_outside_zero_one_raise_naming_the_value(trained, width):
    model, _ = trained
    with pytest.raises(ValueError, match="width"):
        st.at_width(model, width)
    with pytest.raises(ValueError, match="widths"):
        st.make_slimmable_cnn((8, 8, 1), 10, widths=(width, 1.0))


def test_bad_model_arguments_raise():
    with pytest.raises(ValueError, match="including 1.0"):
        st.make_slimmable_cnn((8, 8, 1), 10, widths=(0.25, 0.5))
    with pytest.raises(ValueError, match="one of the widths"):
        st.at_width(st.make_slimmable_cnn((8, 8, 1), 10, width=4), 0.3)
    with pytest.raises(ValueError, match="Flatten"):
        st.SlimmableModel(
            [st.SlimmableConv2D(4, 3), keras.layers.Flatten(), st.SlimmableDense(10, False)],
            (8, 8, 1),
        )
    with pytest.raises(ValueError, match="slim_output=False"):
        st.SlimmableModel([keras.layers.Flatten(), st.SlimmableDense(10)], (8, 8, 1))
    with pytest.raises(ValueError, match="num_random=-1"):
        st.make_slimmable_cnn((8, 8, 1), 10, num_random=-1)
    with pytest.raises(ValueError, match="input_shape"):
        st.make_slimmable_cnn((40, 1), 10)
