"""kd.bridge: Keras 3 <-> tf_keras conversion keeps outputs (within 1e-5), weights and layer names."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd._compat import keras as tf_keras
from keras_kd._keras3 import import_keras3
from tests.bridge import zoo

keras3 = import_keras3()
TOLERANCE = 1e-5


def _outputs(model, x):
    out = model(x, training=False)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


def _max_difference(a, b, x):
    return max(float(np.max(np.abs(p - q))) for p, q in zip(_outputs(a, x), _outputs(b, x)))


def _names(model):
    return [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_from_keras3_keeps_outputs_weights_and_layer_names(name):
    source = zoo.ZOO[name](keras3)
    zoo.randomize(source)
    converted = kd.bridge.from_keras3(source)
    assert isinstance(converted, tf_keras.Model)
    assert isinstance(converted, tf_keras.Sequential) == isinstance(source, keras3.Sequential)
    assert converted.name == source.name and _names(converted) == _names(source)
    for old, new in zip(source.layers, converted.layers):
        for a, b in zip(old.get_weights(), new.get_weights()):
            np.testing.assert_array_equal(a, b)
    x = zoo.inputs_for(source)
    assert _max_difference(source, converted, x) <= TOLERANCE


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_to_keras3_and_back_keeps_outputs_and_layer_names(name):
    student = zoo.ZOO[name](tf_keras)
    zoo.randomize(student)
    there = kd.bridge.to_keras3(student)
    back = kd.bridge.from_keras3(there)
    assert isinstance(there, keras3.Model) and _names(there) == _names(student) == _names(back)
    x = zoo.inputs_for(student)
    assert _max_difference(student, there, x) <= TOLERANCE
    assert _max_difference(student, back, x) <= TOLERANCE


def test_every_supported_layer_has_a_round_trip_case():
    assert set(zoo.LAYERS) == set(kd.bridge.SUPPORTED_LAYERS)


@pytest.mark.parametrize("layer", kd.bridge.SUPPORTED_LAYERS)
def test_each_supported_layer_converts_both_ways_with_equal_outputs(layer):
    source = zoo.LAYERS[layer](keras3)
    zoo.randomize(source)
    x = zoo.inputs_for(source)
    assert _max_difference(source, kd.bridge.from_keras3(source), x) <= TOLERANCE
    native = zoo.LAYERS[layer](tf_keras)
    zoo.randomize(native)
    assert _max_difference(native, kd.bridge.to_keras3(native), x) <= TOLERANCE


@pytest.mark.parametrize("activation", kd.bridge.ACTIVATIONS)
def test_each_listed_activation_computes_the_same(activation):
    source = keras3.Sequential(
        [keras3.Input((6,)), keras3.layers.Dense(6, activation=activation)], name="act"
    )
    zoo.randomize(source)
    x = zoo.inputs_for(source) * 3
    assert _max_difference(source, kd.bridge.from_keras3(source), x) <= TOLERANCE


def test_nested_models_shared_layers_and_several_inputs_and_outputs():
    L = keras3.layers
    inner = keras3.Sequential([keras3.Input((4,)), L.Dense(4, name="inner_dense")], name="inner")
    shared = L.Dense(3, name="shared")
    a, b = keras3.Input((4,), name="a"), keras3.Input((4,), name="b")
    ha, hb = shared(inner(a)), shared(b)
    source = keras3.Model([a, b], [L.Add(name="sum")([ha, hb]), ha], name="two_heads")
    zoo.randomize(source)
    converted = kd.bridge.from_keras3(source)
    assert len(converted.outputs) == 2 and [t.name for t in converted.inputs] == ["a", "b"]
    assert len(converted.get_layer("shared").weights) == 2  # one layer, called twice
    assert isinstance(converted.get_layer("inner"), tf_keras.Sequential)
    assert _max_difference(source, converted, zoo.inputs_for(source)) <= TOLERANCE


def test_frozen_layers_stay_frozen():
    source = zoo.residual(keras3)
    source.get_layer("stem").trainable = False
    converted = kd.bridge.from_keras3(source)
    assert not converted.get_layer("stem").trainable
    assert converted.get_layer("block_conv").trainable


def test_regularizers_are_carried_over():
    source = keras3.Sequential(
        [
            keras3.Input((4,)),
            keras3.layers.Dense(3, kernel_regularizer=keras3.regularizers.L2(0.01), name="d"),
        ]
    )
    converted = kd.bridge.from_keras3(source)
    assert isinstance(converted.get_layer("d").kernel_regularizer, tf_keras.regularizers.L2)
    np.testing.assert_allclose(float(converted.losses[0]), float(source.losses[0]), rtol=1e-5)


def test_converted_teacher_keeps_feature_pair_names():
    teacher = kd.bridge.from_keras3(zoo.residual(keras3))
    student = zoo.residual(tf_keras)
    loss = kd.losses.AttentionTransfer(pairs=[("block_add", "block_add")])
    distiller = kd.Distiller(student=student, teacher=teacher, losses=[loss], alpha=0.0)
    assert distiller.distillation_losses == [loss]


def test_stripped_pruned_student_goes_back_to_keras3_and_saves(tmp_path):
    student = zoo.mlp(tf_keras)
    pruned = kd.compress.prune(student, 0.5, schedule="constant", frequency=1)
    with pytest.raises(kd.bridge.UnsupportedLayerError, match=r"keras_kd\.compress\.strip"):
        kd.bridge.to_keras3(pruned)
    x = zoo.inputs_for(student, batch=8)
    pruned.compile("sgd", "mse")
    callbacks = kd.compress.training_callbacks(pruned)
    pruned.fit(x, np.zeros((8, 10)), batch_size=4, epochs=2, verbose=0, callbacks=callbacks)
    small = kd.compress.strip(pruned)
    back = kd.bridge.to_keras3(small)
    kernel = back.get_layer("hidden1").get_weights()[0]
    assert np.mean(kernel == 0) >= 0.49
    path = str(tmp_path / "student.keras")
    back.save(path)
    assert _max_difference(small, keras3.saving.load_model(path), x) <= TOLERANCE


# ---- refusals: each names the layer or model and says what to do ----


def _unsupported(build):
    with pytest.raises(kd.bridge.UnsupportedLayerError) as error:
        kd.bridge.from_keras3(build())
    return str(error.value)


def test_unsupported_layer_is_named_with_its_class_and_what_to_do():
    message = _unsupported(
        lambda: keras3.Sequential([keras3.Input((5, 3)), keras3.layers.LSTM(4, name="memory")])
    )
    assert "'memory'" in message and "keras.src.layers.rnn.lstm.LSTM" in message
    assert "SUPPORTED_LAYERS" in message and "Distiller(teacher=model)" in message


def test_lambda_layer_is_refused():
    message = _unsupported(
        lambda: keras3.Sequential(
            [keras3.Input((4,)), keras3.layers.Lambda(lambda t: t * 2, name="double")]
        )
    )
    assert "'double'" in message and "Python code" in message


def test_keras_ops_call_on_a_tensor_is_refused_with_the_layer_to_use():
    def build():
        x = keras3.Input((4,))
        return keras3.Model(x, keras3.ops.relu(keras3.layers.Dense(4)(x)))

    assert "keras.ops call" in _unsupported(build)


def test_activation_that_differs_between_the_two_kerases_is_refused():
    message = _unsupported(
        lambda: keras3.Sequential(
            [keras3.Input((4,)), keras3.layers.Dense(2, activation="hard_sigmoid", name="gate")]
        )
    )
    assert "'gate'" in message and "hard_sigmoid" in message


def test_argument_without_equivalent_is_refused():
    message = _unsupported(
        lambda: keras3.Sequential(
            [keras3.Input((4,)), keras3.layers.LayerNormalization(rms_scaling=True, name="rms")]
        )
    )
    assert "'rms'" in message and "rms_scaling=True" in message


def test_subclassed_model_is_refused_with_the_functional_api_as_the_way():
    class Net(keras3.Model):
        def __init__(self):
            super().__init__(name="net")
            self.dense = keras3.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    model = Net()
    model(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match=r"received: model='net' .*functional API"):
        kd.bridge.from_keras3(model)


def test_unbuilt_model_is_refused():
    with pytest.raises(ValueError, match=r"must be built.*received: model='unbuilt'"):
        kd.bridge.from_keras3(keras3.Sequential([keras3.layers.Dense(2)], name="unbuilt"))


def test_each_direction_refuses_the_other_kerases_model_and_names_the_right_function():
    with pytest.raises(
        TypeError, match=r"Keras 3.*received: model='mlp'.*tf_keras model.*to_keras3"
    ):
        kd.bridge.from_keras3(zoo.mlp(tf_keras))
    with pytest.raises(
        TypeError, match=r"tf_keras.*received: model='mlp'.*Keras 3 model.*from_keras3"
    ):
        kd.bridge.to_keras3(zoo.mlp(keras3))
    with pytest.raises(TypeError, match=r"received: model='not a model'"):
        kd.bridge.to_keras3("not a model")
