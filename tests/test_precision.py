"""The teacher's precision (keras_kd.teachers.precision) and training under mixed precision policies.

``teacher_precision="auto"`` chooses bfloat16 only on CPUs with AMX, and only after a sample agrees
with float32; the Distiller, replayed views and every kind of student train under
``mixed_bfloat16`` as well as ``mixed_float16``.
"""

import numpy as np
import pytest

import keras_kd as kd
from examples.models import make_student, make_teacher
from keras_kd import keras
from keras_kd import students as st
from keras_kd.report import describe_machine
from keras_kd.teachers import precision

AMX = {"cpu": "Intel Xeon (test)", "cores": 2, "avx512": True, "amx": True}
NO_AMX = {"cpu": "AMD EPYC (test)", "cores": 2, "avx512": True, "amx": False}


@pytest.fixture
def policy():
    """Sets a global dtype policy for one test and restores float32 afterwards."""
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy("float32")


def test_auto_stays_float32_without_amx_and_says_why(teacher, digits):
    models, report = precision.choose("auto", [teacher], digits[0][0], machine=NO_AMX)
    assert models[0] is teacher
    assert report["precision"] == "float32" and "has no AMX" in report["reason"]


def test_auto_on_this_machine_follows_its_amx_flag(teacher, digits):
    _, report = precision.choose("auto", [teacher], digits[0][0])
    assert report["precision"] == ("bfloat16" if describe_machine()["amx"] else "float32")


@pytest.mark.parametrize("requested, machine", [("auto", AMX), ("bfloat16", NO_AMX)])
def test_bfloat16_is_used_after_a_sample_agrees_with_float32(teacher, digits, requested, machine):
    x = digits[0][0]
    models, report = precision.choose(requested, [teacher], x, machine=machine)
    assert report["precision"] == "bfloat16" and report["agreement"] >= precision.MIN_AGREEMENT
    copy = models[0]
    assert copy is not teacher and copy.layers[1].compute_dtype == "bfloat16"
    assert copy.layers[-1].compute_dtype == "float32"  # the logits stay float32
    np.testing.assert_allclose(copy(x[:64]), teacher(x[:64]), atol=0.25)


def test_bfloat16_below_the_agreement_threshold_falls_back_to_float32(teacher, digits):
    models, report = precision.choose(
        "bfloat16", [teacher], digits[0][0], machine=AMX, min_agreement=1.01
    )
    assert models[0] is teacher and report["precision"] == "float32"
    assert report["agreement"] >= 0.9 and "below" in report["reason"]


def test_bfloat16_copy_of_nested_and_subclassed_models():
    inner = keras.Sequential([keras.layers.Dense(8, activation="relu")], name="inner")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(inner(inputs)))
    copy = precision.bfloat16_copy(model)
    assert copy.get_layer("inner").layers[0].compute_dtype == "bfloat16"
    assert copy.get_layer("out").compute_dtype == "float32"
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), model.get_weights()))

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert precision.bfloat16_copy(Subclassed()) is None
    _, report = precision.choose("bfloat16", [Subclassed()], np.zeros((2, 4)), machine=AMX)
    assert report["precision"] == "float32" and "no bfloat16 copy" in report["reason"]


@pytest.mark.parametrize("augment, views", [(None, None), ("flip", None), ("flip", 2)])
def test_distiller_runs_every_teacher_pass_in_the_chosen_precision(
    teacher, student, digits, augment, views
):
    (x, y), _ = digits
    layer = keras.layers.RandomFlip("horizontal") if augment else None
    distiller = kd.Distiller(
        student, teacher, augment=layer, replay_views=views, teacher_precision="bfloat16"
    )
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = distiller.fit(x[:128], y[:128], epochs=1, batch_size=64, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert distiller.teacher_precision_report["precision"] == "bfloat16"
    assert distiller.teacher_stage.tap.model.layers[1].compute_dtype == "bfloat16"
    stored = distiller.replay if views else distiller.teacher_stage.cache
    assert stored.tag == "bfloat16"
    assert distiller.get_config()["teacher_precision"] == "bfloat16"


def test_the_bfloat16_copy_follows_a_teacher_changed_between_fits(teacher, student, digits):
    (x, y), _ = digits
    distiller = kd.Distiller(student, teacher, teacher_precision="bfloat16")
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    distiller.fit(x[:64], y[:64], epochs=1, verbose=0)
    teacher.layers[-1].bias.assign(teacher.layers[-1].bias + 1.0)
    distiller.fit(x[:64], y[:64], epochs=1, verbose=0)
    copy = distiller.teacher_stage.tap.model
    assert copy is not teacher and distiller.teacher_stage.cache.passes == 2
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), teacher.get_weights()))


def test_bad_teacher_precision_is_refused(teacher, student):
    with pytest.raises(
        ValueError, match='teacher_precision must be "auto", "float32" or "bfloat16"'
    ):
        kd.Distiller(student, teacher, teacher_precision="float16")


def test_mixed_bfloat16_policy_trains_like_float32(digits, trained_teacher_weights, policy):
    """bfloat16 keeps 8 bits of mantissa (float16: 11): losses agree within 2 %, weights 2e-2.

    (1.1 % apart on an AVX2-only AMD EPYC, which has no bfloat16 instructions.)
    """
    (x, y), _ = digits
    keras.utils.set_random_seed(1)
    initial = make_student(x.shape[1:], 10, width=8).get_weights()
    runs = {}
    for name in ("float32", "mixed_bfloat16"):
        policy(name)
        teacher = make_teacher(x.shape[1:], 10, width=16)
        teacher.set_weights(trained_teacher_weights)
        student = make_student(x.shape[1:], 10, width=8)
        student.set_weights(initial)
        distiller = kd.Distiller(  # KD: DIST's correlations amplify low-precision round-off
            student,
            teacher,
            losses=[kd.losses.LogitsKD(4.0)],
            alpha=0.1,
            teacher_precision="float32",
        )
        distiller.compile(
            keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        history = distiller.fit(x[:256], y[:256], batch_size=64, epochs=2, shuffle=False, verbose=0)
        runs[name] = (student, history.history["loss"], student.get_weights())
    policy("float32")
    mixed, mixed_losses, mixed_weights = runs["mixed_bfloat16"]
    _, losses, weights = runs["float32"]
    assert mixed.layers[-1].compute_dtype == "bfloat16"
    np.testing.assert_allclose(mixed_losses, losses, rtol=2e-2)
    assert max(np.abs(w - w0).max() for w, w0 in zip(weights, initial)) > 0.05
    for a, b in zip(mixed_weights, weights):
        np.testing.assert_allclose(a, b, atol=2e-2)


def _tree():
    return st.SoftDecisionTree(3, 10, (8, 8, 1))


def _early():
    return st.EarlyExit(make_student((8, 8, 1), 10, width=8), exits=["s_block1", "s_block2"])


def _replayed(student, teacher):
    augment = keras.Sequential([keras.layers.RandomTranslation(0.1, 0.1), kd.data.MixUp()])
    return kd.Distiller(
        student,
        teacher,
        losses=[kd.losses.LogitsKD(4.0)],
        alpha=0.0,
        augment=augment,
        replay_views=2,
    )


@pytest.mark.parametrize("name", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("kind", ["cnn_replayed", "tree", "early_exit", "slimmable"])
def test_every_student_trains_under_mixed_precision_policies(digits, policy, name, kind):
    (x, y), _ = digits
    x, y = x[:64], y[:64]
    policy(name)
    keras.utils.set_random_seed(0)
    teacher = make_teacher((8, 8, 1), 10, width=8)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if kind == "slimmable":
        model = trained = st.make_slimmable_cnn((8, 8, 1), 10, width=8)
        trained.compile(keras.optimizers.Adam(1e-2))
    elif kind == "cnn_replayed":
        model = make_student((8, 8, 1), 10, width=8)
        trained = _replayed(model, teacher)
        trained.compile(keras.optimizers.Adam(1e-2))
    else:
        model = _tree() if kind == "tree" else _early()
        losses = [st.ExitDistillation(4.0)] if kind == "early_exit" else None
        trained = kd.Distiller(model, teacher, losses=losses, alpha=0.0 if losses else 0.1)
        trained.compile(keras.optimizers.Adam(1e-2), loss)
    before = [w.copy() for w in model.get_weights()]
    labels = None if kind == "cnn_replayed" else y
    history = trained.fit(x, labels, epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
