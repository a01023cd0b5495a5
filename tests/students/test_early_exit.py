"""Tests of keras_kd.students.EarlyExit and ExitDistillation: exits, MACs, training, export."""

import numpy as np
import pytest

import keras_kd as kd
from examples.models import make_student
from keras_kd import keras
from keras_kd import students as st

EXITS = ["s_block1", "s_block2"]


def _early(**kwargs):
    keras.utils.set_random_seed(3)
    return st.EarlyExit(make_student((8, 8, 1), 10, width=8), exits=EXITS, **kwargs)


@pytest.fixture(scope="module")
def trained(digits):
    """An early-exit student trained briefly on 600 digits (shared: training is the slow part)."""
    (x, y), _ = digits
    early = _early()
    early.compile(keras.optimizers.Adam(1e-2))
    history = early.fit(x[:600], y[:600], epochs=4, batch_size=32, verbose=0)
    return early, history.history


def test_exit_distillation_matches_numpy_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3, 5)).astype(np.float32)
    teacher = rng.normal(size=(4, 5)).astype(np.float32)
    labels = np.array([0, 1, 2, 4])
    t = 2.0

    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    def kd_term(target, z):
        p = np.exp(log_softmax(target / t))
        return (p * (log_softmax(target / t) - log_softmax(z / t))).sum(-1).mean() * t * t

    ce = sum(-log_softmax(logits[:, i])[np.arange(4), labels].mean() for i in range(3))
    self_kd = kd_term(logits[:, 2], logits[:, 0]) + kd_term(logits[:, 2], logits[:, 1])
    expected = ce + 0.5 * self_kd + 0.25 * kd_term(teacher, logits[:, 2])
    loss = st.ExitDistillation(temperature=t, distillation_weight=0.5, teacher_weight=0.25)
    assert float(loss(teacher, logits, labels=labels)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(None, logits, labels=labels)) == pytest.approx(ce + 0.5 * self_kd, rel=1e-5)


def test_exit_macs_count_backbone_and_heads_by_hand():
    early = _early()
    block1 = 8 * 8 * 8 * (3 * 3 * 1)  # 8x8 positions, 8 filters, 3x3x1 kernel
    block2 = 4 * 4 * 16 * (3 * 3 * 8)
    head0 = (2 * 2 * 8) * 10  # 8x8 map pooled to 2x2, flattened, Dense to 10
    head1 = (2 * 2 * 16) * 10
    final = 16 * 10
    assert early.exit_macs() == [block1 + head0, block1 + block2 + head1, block1 + block2 + final]
    assert early.dynamic_macs() == [
        block1 + head0,
        block1 + block2 + head0 + head1,
        block1 + block2 + final + head0 + head1,
    ]
    assert st.count_macs(early.truncated(1)) == early.exit_macs()[1]


def test_training_lowers_the_loss_and_every_exit_beats_chance(trained, digits):
    early, history = trained
    _, (x_test, y_test) = digits
    assert history["loss"][-1] < history["loss"][0]
    report = early.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert all(report[f"exit{i}_accuracy"] > 0.3 for i in range(3)), report


@pytest.mark.parametrize("threshold, expected_exit", [(0.0, 0), (1.01, 2)])
def test_threshold_extremes_send_every_input_to_one_exit(trained, digits, threshold, expected_exit):
    early, _ = trained
    _, (x_test, _) = digits
    exit_index, logits = early.predict_dynamic(x_test[:64], threshold)
    assert np.all(exit_index == expected_exit)
    np.testing.assert_allclose(logits, early.exit_logits(x_test[:64])[:, expected_exit], atol=1e-6)


def test_average_macs_fall_monotonically_as_the_threshold_falls(trained, digits):
    early, _ = trained
    _, (x_test, y_test) = digits
    thresholds = [1.01, 0.999, 0.99, 0.9, 0.7, 0.5, 0.3, 0.0]
    curve = st.exit_curve(early, x_test, y_test, thresholds)
    macs = [point["average_macs"] for point in curve]
    assert all(later <= earlier for earlier, later in zip(macs, macs[1:]))
    assert macs[-1] < macs[0]
    assert macs[0] == early.dynamic_macs()[-1] and macs[-1] == early.dynamic_macs()[0]
    assert early.average_macs(x_test, 0.9) == pytest.approx(macs[3])


def test_a_teacher_distils_into_the_exits_through_the_distiller(digits):
    (x, y), _ = digits
    keras.utils.set_random_seed(4)
    teacher = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    early = _early()
    teacher_before, student_before = teacher.get_weights(), early.get_weights()
    distiller = kd.Distiller(early, teacher, losses=[st.ExitDistillation(4.0)], alpha=0.0)
    distiller.compile(keras.optimizers.Adam(3e-3), run_eagerly=True)
    history = distiller.fit(x[:128], y[:128], epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(history.history["exit_distillation"][0])
    assert all(np.array_equal(a, b) for a, b in zip(teacher.get_weights(), teacher_before))
    assert not all(np.array_equal(a, b) for a, b in zip(early.get_weights(), student_before))


def test_config_and_save_load_round_trip(trained, digits, tmp_path):
    early, _ = trained
    _, (x_test, _) = digits
    clone = st.EarlyExit.from_config(early.get_config())
    assert clone.get_config()["exits"] == EXITS and clone.head_grid == early.head_grid
    path = str(tmp_path / "early.keras")
    early.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, st.EarlyExit)
    np.testing.assert_allclose(loaded.exit_logits(x_test[:32]), early.exit_logits(x_test[:32]))


def test_the_all_exits_file_runs_in_litert_and_truncated_models_match_it(trained, digits, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    early, _ = trained
    _, (x_test, y_test) = digits
    x = x_test[:50]
    exits_model = early.exits_model()
    path = kd.export.to_tflite(exits_model, str(tmp_path / "exits.tflite"))
    interpreter = Interpreter(model_path=path)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], [len(x), 8, 8, 1])
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    stacked = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert stacked.shape == (len(x), 3, 10)
    np.testing.assert_allclose(stacked, early.exit_logits(x), atol=1e-4)

    # truncated(k) models are plain single-output models, converted like any student (the
    # slimmable tests and examples/dynamic.py --export_tflite convert and verify such files).
    first = early.truncated(0)
    assert len(first.outputs) == 1 and first.count_params() < early.truncated(2).count_params()
    np.testing.assert_allclose(first.predict(x, verbose=0), stacked[:, 0], atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"exits": []}, "exits=[]"),
        ({"exits": "s_block1"}, "exits='s_block1'"),
        ({"exits": ["s_nope"]}, "unknown 's_nope'"),
        ({"exits": ["s_logits"]}, "must not name the output layer 's_logits'"),
        ({"exits": ["s_block2", "s_block1"]}, "in the order the model computes them"),
        ({"exits": ["s_block1", "s_block1"]}, "distinct layer names"),
        ({"exits": EXITS, "head_grid": 0}, "head_grid=0"),
        ({"exits": EXITS, "temperature": 0}, "temperature=0"),
        ({"exits": EXITS, "distillation_weight": -1}, "distillation_weight=-1"),
    ],
)
def test_bad_arguments_raise_naming_argument_and_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        st.EarlyExit(make_student((8, 8, 1), 10, width=4), **kwargs)


def test_bad_threshold_exit_index_and_compile_arguments_raise():
    early = _early()
    with pytest.raises(ValueError, match="threshold=-0.1"):
        early.predict_dynamic(np.zeros((2, 8, 8, 1), np.float32), -0.1)
    with pytest.raises(ValueError, match="exit_index=3"):
        early.truncated(3)
    with pytest.raises(ValueError, match="loss cannot be set"):
        early.compile("adam", loss="mse")
