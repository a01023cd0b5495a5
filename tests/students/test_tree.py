"""Tests of keras_kd.students.SoftDecisionTree: probabilities, penalty, training, pictures, export."""

import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf
from keras_kd.students import SoftDecisionTree, SoftDecisionTreeLayer, tree_plots


def _tree(depth=3, **kwargs):
    keras.utils.set_random_seed(3)
    return SoftDecisionTree(depth, 10, (8, 8, 1), **kwargs)


def _hard_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("depth", [1, 4])
def test_leaf_probabilities_are_distributions(depth):
    leaves = _tree(depth).leaf_probabilities()
    assert leaves.shape == (2**depth, 10)
    assert np.all(leaves >= 0)
    np.testing.assert_allclose(leaves.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("inverse_temperature", [1.0, 1e4])
def test_path_probabilities_sum_to_one_and_give_the_outputs(digits, inverse_temperature):
    (x, _), _ = digits
    tree = _tree(4, inverse_temperature=inverse_temperature)
    paths = tree.path_probabilities(x[:32])
    assert paths.shape == (32, 16)
    np.testing.assert_allclose(paths.sum(axis=1), 1.0, atol=1e-5)
    mixture = tree.predict(x[:32], verbose=0)
    assert np.all(np.isfinite(mixture))
    np.testing.assert_allclose(
        np.exp(mixture), paths @ tree.leaf_probabilities(), rtol=1e-4, atol=1e-6
    )
    max_path = SoftDecisionTree.from_config({**tree.get_config(), "inference": "max_path"})
    max_path.set_weights(tree.get_weights())
    np.testing.assert_allclose(
        np.exp(max_path.predict(x[:32], verbose=0)),
        tree.leaf_probabilities()[paths.argmax(axis=1)],
        rtol=1e-5,
    )


def _numpy_penalty(x, kernel, bias, beta, strength, decay):
    """Frosst & Hinton's penalty, node by node: reach probabilities by walking down the tree."""
    right = 1.0 / (1.0 + np.exp(-beta * (x @ kernel + bias)))
    inner = kernel.shape[1]
    reach = np.ones((len(x), inner))
    for node in range(1, inner):
        parent = (node - 1) // 2
        branch = right[:, parent] if node % 2 == 0 else 1.0 - right[:, parent]
        reach[:, node] = reach[:, parent] * branch
    total = 0.0
    for node in range(inner):
        alpha = np.sum(reach[:, node] * right[:, node]) / np.sum(reach[:, node])
        level = int(np.floor(np.log2(node + 1)))
        total += decay**level * (0.5 * np.log(alpha) + 0.5 * np.log(1.0 - alpha))
    return -strength * total


@pytest.mark.parametrize("decay", [0.5, 1.0])
def test_penalty_is_finite_non_negative_and_matches_numpy_reference(decay):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 5)).astype(np.float32)
    layer = SoftDecisionTreeLayer(
        depth=2, num_classes=3, inverse_temperature=1.5, penalty_strength=0.3, penalty_decay=decay
    )
    layer.build((None, 5))
    kernel = rng.normal(size=(5, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    layer.set_weights([kernel, bias, rng.normal(size=(4, 3)).astype(np.float32)])
    layer(tf.constant(x), training=True)
    (penalty,) = layer.losses
    penalty = float(penalty)
    assert np.isfinite(penalty) and penalty >= 0
    expected = _numpy_penalty(x.astype(np.float64), kernel, bias, 1.5, 0.3, decay)
    np.testing.assert_allclose(penalty, expected, rtol=1e-4)


def test_penalty_stays_finite_for_saturated_nodes_and_only_applies_in_training(digits):
    (x, _), _ = digits
    tree = _tree(3, inverse_temperature=1e4, penalty_strength=1.0)
    tree(x[:16], training=True)
    (penalty,) = tree.losses
    assert np.isfinite(float(penalty)) and float(penalty) >= 0
    tree(x[:16], training=False)
    assert tree.losses == []
    unpenalized = _tree(3, penalty_strength=0.0)
    unpenalized(x[:16], training=True)
    assert unpenalized.losses == []


def test_distiller_fit_minimizes_the_penalty_as_regularization(digits, teacher):
    (x, _), _ = digits
    tree = _tree(3, inverse_temperature=5.0, penalty_strength=1.0)

    def penalty():
        tree(x[:256], training=True)
        return float(tree.losses[0])

    before = penalty()
    # No label or distillation term: the student's regularization (the penalty) is all that is left.
    distiller = kd.Distiller(student=tree, teacher=teacher, alpha=0.0, loss_weights=[0.0])
    distiller.compile(keras.optimizers.Adam(3e-2))
    history = distiller.fit(x[:256], epochs=3, batch_size=256, verbose=0)
    assert history.history["loss"][0] == pytest.approx(before, rel=1e-4)
    smallest = 3 * np.log(
        2.0
    )  # every node splits evenly: log 2 per level (weights 1, 2 x 0.5, ...)
    assert smallest < penalty() < smallest + 0.7 * (before - smallest)


def test_distilled_tree_beats_chance_by_far_on_digits(digits, teacher):
    (x, y), (x_test, y_test) = digits
    tree = _tree(4)
    distiller = kd.Distiller(student=tree, teacher=teacher, alpha=0.1)
    distiller.compile(keras.optimizers.Adam(1e-2), _hard_loss(), metrics=["accuracy"])
    before = [w.copy() for w in tree.get_weights()]
    history = distiller.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert not any(np.array_equal(a, b) for a, b in zip(before, tree.get_weights()))
    tree.compile(loss=_hard_loss(), metrics=["accuracy"])
    assert tree.evaluate(x_test, y_test, verbose=0)[1] > 0.6


def test_node_filters_and_path_render(tmp_path, digits):
    _, (x_test, _) = digits
    tree = _tree(3)
    figure = tree_plots._filters_figure(tree, (8, 8))
    assert len(figure.axes) == 2**3 - 1
    for ax, node_filter in zip(figure.axes, tree.node_filters()):
        np.testing.assert_allclose(ax.images[0].get_array(), node_filter[..., 0], rtol=1e-6)
    filters = tree_plots.plot_tree_filters(tree, str(tmp_path / "filters.png"), (8, 8))
    path = tree_plots.plot_tree_path(tree, x_test[0], str(tmp_path / "path.png"))
    for png in (filters, path):
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(png) > 5000
    assert len(tree_plots._path_figure(tree, x_test[:1]).axes) == 3 + 2


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t: tree_plots.plot_tree_filters(t, "/no/such/dir/f.png"), "directory"),
        (lambda t: tree_plots.plot_tree_filters(t, "f.png", image_shape=(7, 7)), "image_shape"),
        (lambda t: tree_plots.plot_tree_path(t, np.zeros((2, 8, 8, 1)), "p.png"), "one example"),
    ],
)
def test_plots_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(_tree(1))


def test_config_and_save_load_round_trip(tmp_path, digits):
    (x, _), _ = digits
    tree = _tree(
        3,
        inverse_temperature=2.0,
        penalty_strength=0.05,
        penalty_decay=0.7,
        inference="max_path",
        name="my_tree",
    )
    config = tree.get_config()
    assert config == {
        "name": "my_tree",
        "trainable": True,
        "depth": 3,
        "num_classes": 10,
        "input_shape": [8, 8, 1],
        "inverse_temperature": 2.0,
        "penalty_strength": 0.05,
        "penalty_decay": 0.7,
        "inference": "max_path",
    }
    assert SoftDecisionTree.from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tree))
    assert isinstance(restored, SoftDecisionTree) and restored.get_config() == config
    tree.save(tmp_path / "tree.keras")
    loaded = keras.models.load_model(tmp_path / "tree.keras")
    assert isinstance(loaded, SoftDecisionTree) and loaded.get_config() == config
    np.testing.assert_array_equal(loaded.predict(x[:8], verbose=0), tree.predict(x[:8], verbose=0))


def test_distiller_with_tree_student_saves_and_loads(tmp_path, digits, teacher):
    (x, y), _ = digits
    distiller = kd.Distiller(student=_tree(2), teacher=teacher)
    distiller.compile("adam", _hard_loss())
    distiller.fit(x[:64], y[:64], epochs=1, verbose=0)
    distiller.save(tmp_path / "distiller.keras")
    loaded = keras.models.load_model(tmp_path / "distiller.keras")
    assert isinstance(loaded.student, SoftDecisionTree)
    np.testing.assert_allclose(
        loaded.predict(x[:8], verbose=0), distiller.predict(x[:8], verbose=0), rtol=1e-6
    )
    loaded.fit(x[:64], y[:64], epochs=1, verbose=0)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"depth": 0}, "depth"),
        ({"depth": 11}, "depth"),
        ({"depth": 2.5}, "depth"),
        ({"num_classes": 1}, "num_classes"),
        ({"input_shape": (8, 0)}, "input_shape"),
        ({"input_shape": None}, "input_shape"),
        ({"inverse_temperature": 0.0}, "inverse_temperature"),
        ({"penalty_strength": -0.1}, "penalty_strength"),
        ({"penalty_decay": 0.0}, "penalty_decay"),
        ({"penalty_decay": 1.5}, "penalty_decay"),
        ({"inference": "argmax"}, "inference"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, argument):
    arguments = {"depth": 3, "num_classes": 10, "input_shape": (8, 8, 1), **kwargs}
    with pytest.raises(ValueError, match=f"{argument}=") as error:
        SoftDecisionTree(**arguments)
    assert f"{argument} must" in str(error.value)


def test_tflite_export_runs_in_litert_and_matches_keras(tmp_path, digits):
    _, (x_test, _) = digits
    tree = _tree(3, inverse_temperature=3.0)
    path = kd.export.to_tflite(tree, str(tmp_path / "tree.tflite"), target="float")
    interpreter = Interpreter(model_path=path)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], x_test.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x_test)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(lite, tree.predict(x_test, verbose=0), atol=1e-4)
