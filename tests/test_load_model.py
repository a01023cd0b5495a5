"""kd.load_model: every saved form, Keras 3 files bridged, and code-running files refused by default."""

import os

import numpy as np
import pytest

import keras_kd as kd
from keras_kd._compat import keras, tf
from keras_kd._keras3 import import_keras3

keras3 = import_keras3()
X = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")


def _tf_keras_model(lambda_layer=False):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="hidden")]
    if lambda_layer:
        layers.append(keras.layers.Lambda(lambda t: t * 2.0, name="double"))
    return keras.Sequential([*layers, keras.layers.Dense(3, name="logits")], name="net")


def _keras3_model(lambda_layer=False):
    keras3.utils.set_random_seed(0)
    inputs = keras3.Input((6,), name="features")
    h = keras3.layers.Dense(8, activation="relu", name="hidden")(inputs)
    if lambda_layer:
        h = keras3.layers.Lambda(lambda t: t * 2.0, name="double")(h)
    outputs = keras3.layers.Dense(3, name="logits")(h)
    return keras3.Model(inputs, outputs, name="net3")


def _save(model, path):
    if path.endswith("saved_model"):
        model.save(path, save_format="tf")
    else:
        model.save(path)
    return path


@pytest.mark.parametrize("suffix", ("model.keras", "model.h5", "saved_model"))
def test_tf_keras_files_load_with_the_same_outputs(tmp_path, suffix):
    model = _tf_keras_model()
    loaded = kd.load_model(_save(model, str(tmp_path / suffix)))
    assert isinstance(loaded, keras.Model) and loaded.get_layer("hidden") is not None
    np.testing.assert_allclose(loaded(X), model(X), atol=1e-6)


@pytest.mark.parametrize("suffix", ("model.keras", "model.h5"))
def test_keras3_files_come_back_as_tf_keras_models(tmp_path, suffix):
    model = _keras3_model()
    path = str(tmp_path / suffix)
    model.save(path)
    loaded = kd.load_model(path)
    assert isinstance(loaded, keras.Model)
    assert [layer.name for layer in loaded.layers] == ["features", "hidden", "logits"]
    np.testing.assert_allclose(loaded(X).numpy(), np.asarray(model(X)), atol=1e-5)


def test_pruned_and_quantization_aware_models_load_with_their_wrappers(tmp_path):
    model = _tf_keras_model()
    pruned = kd.compress.prune(model, 0.5, schedule="constant")
    loaded = kd.load_model(_save(pruned, str(tmp_path / "pruned.h5")))
    assert any("prune_low_magnitude" in layer.name for layer in loaded.layers)
    qat = kd.compress.quantize(_tf_keras_model())
    loaded = kd.load_model(_save(qat, str(tmp_path / "qat.h5")))
    assert kd.compress.is_quantized(loaded)
    np.testing.assert_allclose(loaded(X), qat(X), atol=1e-5)


@pytest.mark.parametrize("suffix", ("model.keras", "model.h5", "saved_model"))
def test_lambda_layer_is_refused_unless_unsafe(tmp_path, suffix):
    model = _tf_keras_model(lambda_layer=True)
    path = _save(model, str(tmp_path / suffix))
    with pytest.raises(ValueError, match=r"received: path='.*' with Lambda layers \['double'\]"):
        kd.load_model(path)
    loaded = kd.load_model(path, unsafe=True)
    np.testing.assert_allclose(loaded(X), model(X), atol=1e-6)


def test_keras3_lambda_file_is_refused_unless_unsafe(tmp_path):
    path = str(tmp_path / "lambda3.keras")
    _keras3_model(lambda_layer=True).save(path)
    with pytest.raises(ValueError, match=r"Lambda layers \['double'\].*unsafe=True"):
        kd.load_model(path)
    # unsafe lets Keras 3 load it; the bridge then names the layer it cannot translate.
    with pytest.raises(kd.bridge.UnsupportedLayerError, match=r"'double'"):
        kd.load_model(path, unsafe=True)


def test_a_refused_load_leaves_safe_mode_on(tmp_path):
    path = _save(_tf_keras_model(lambda_layer=True), str(tmp_path / "model.keras"))
    kd.load_model(path, unsafe=True)
    with pytest.raises(ValueError, match="Lambda"):
        keras.models.load_model(path)  # Keras's own safe mode is still on afterwards


def test_signature_only_saved_model_is_refused_with_the_teacher_route(tmp_path):
    module = tf.Module()
    module.f = tf.function(lambda x: {"logits": x * 2}, input_signature=[tf.TensorSpec([None, 6])])
    path = str(tmp_path / "signatures")
    tf.saved_model.save(module, path, signatures={"serving_default": module.f})
    with pytest.raises(ValueError, match=r"holds no Keras model.*Distiller\(teacher=path\)"):
        kd.load_model(path)


def test_paths_of_no_supported_kind_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"received: path='.*missing.keras', which does not exist"):
        kd.load_model(str(tmp_path / "missing.keras"))
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    with pytest.raises(ValueError, match=r"neither a zip nor an HDF5 file"):
        kd.load_model(str(text))
    weights = str(tmp_path / "weights.weights.h5")
    _tf_keras_model().save_weights(weights)
    with pytest.raises(ValueError, match=r"holds weights only"):
        kd.load_model(weights)


def test_examples_load_model_flag_accepts_directories_and_has_an_unsafe_switch(tmp_path):
    from examples import export as export_example

    assert export_example.FLAGS["unsafe_deserialization"].default is False
    validator = [v for v in export_example.FLAGS["model"].validators][0]
    assert validator.checker(str(tmp_path)) and not validator.checker(str(tmp_path / "no"))


def test_an_examples_model_flag_takes_a_keras3_file_and_refuses_a_lambda_one(tmp_path):
    from examples import export as export_example

    keras3.utils.set_random_seed(0)
    inputs = keras3.Input((8, 8, 1))
    h = keras3.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    logits = keras3.layers.Dense(10, name="logits")(keras3.layers.Flatten()(h))
    path = str(tmp_path / "keras3_student.keras")
    keras3.Model(inputs, logits, name="keras3_student").save(path)
    report = export_example.run(path, target="float", output_dir=str(tmp_path / "out"), runs=2)
    assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-4
    risky = str(tmp_path / "lambda.h5")
    _save(_tf_keras_model(lambda_layer=True), risky)
    with pytest.raises(ValueError, match="unsafe=True"):
        export_example.run(risky, target="float", output_dir=str(tmp_path / "refused"))
    assert not (tmp_path / "refused").exists()


def test_atomic_path_replaces_the_file_only_when_the_block_succeeds(tmp_path):
    from keras_kd.loading import atomic_path

    path = tmp_path / "data.npz"
    with atomic_path(path) as temp:
        assert temp.endswith("data.npz") and os.path.dirname(temp) == str(tmp_path)
        np.savez(temp, x=np.arange(3))
    with pytest.raises(RuntimeError), atomic_path(path) as temp:
        np.savez(temp, x=np.arange(5))
        raise RuntimeError("crash mid-write")
    with np.load(path) as saved:
        np.testing.assert_array_equal(saved["x"], np.arange(3))
    assert os.listdir(tmp_path) == ["data.npz"]
    with pytest.raises(ValueError, match="directory of path must exist"):
        with atomic_path(tmp_path / "missing" / "data.npz"):
            pass


def test_a_loaded_pruned_model_trains_with_plain_fit_and_under_a_distiller(tmp_path):
    pruned = kd.compress.prune(
        _tf_keras_model(), 0.5, schedule="constant", begin_step=0, frequency=1
    )
    path = _save(pruned, str(tmp_path / "pruned.h5"))
    y = np.arange(len(X)) % int(pruned.output_shape[-1])
    loaded = kd.load_model(path)
    loaded.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loaded.fit(X, y, epochs=1, verbose=0)  # without the mark, tfmot asserts on the pruning step
    kernel = next(w for w in loaded.weights if "kernel" in w.name and "prune" in w.name)
    assert np.mean(kernel.numpy() == 0) >= 0.45
    teacher = _tf_keras_model()
    distiller = kd.Distiller(kd.load_model(path), teacher)
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    distiller.fit(X, y, epochs=1, verbose=0)
