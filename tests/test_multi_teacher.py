"""A Distiller with several teachers: averaged soft targets, weighted as asked."""

import numpy as np
import pytest

import keras_kd as kd
from examples.models import make_teacher
from keras_kd import keras
from tests.conftest import teacher_weights, weights_equal


@pytest.fixture(scope="module")
def second_teacher_weights(digits):
    """Weights of a second, smaller teacher, trained once per module."""
    (x, y), _ = digits
    return teacher_weights(x[:512], y[:512], width=8, seed=5, epochs=2)


@pytest.fixture
def second_teacher(digits, second_teacher_weights):
    """A fresh copy of the second teacher."""
    (x, _), _ = digits
    model = make_teacher(x.shape[1:], 10, width=8)
    model.set_weights(second_teacher_weights)
    return model


def _terms(student, teachers, loss, x, y, cache_teacher="auto"):
    """One epoch at learning rate 0: the reported distillation term for the unchanged student."""
    model = keras.models.clone_model(student)
    model.set_weights(student.get_weights())
    distiller = kd.Distiller(
        model, teachers, losses=[loss], cache_teacher=cache_teacher, cache_dtype="float32"
    )
    distiller.compile(
        keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = distiller.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    return history.history[loss.name][0], distiller


def test_teacher_weights_select_and_mix_the_teachers(digits, teacher, second_teacher, student):
    (x, y), _ = digits
    x, y = x[:128], y[:128]
    only_first, _ = _terms(
        student, [teacher, second_teacher], kd.losses.MultiTeacherKD(4.0, [1.0, 0.0]), x, y
    )
    single, _ = _terms(student, teacher, kd.losses.LogitsKD(4.0), x, y)
    assert only_first == pytest.approx(single, rel=1e-5)
    only_second, _ = _terms(
        student, [teacher, second_teacher], kd.losses.MultiTeacherKD(4.0, [0.0, 2.0]), x, y
    )
    single_second, _ = _terms(student, second_teacher, kd.losses.LogitsKD(4.0), x, y)
    assert only_second == pytest.approx(single_second, rel=1e-5)
    mixed, _ = _terms(student, [teacher, second_teacher], kd.losses.MultiTeacherKD(4.0), x, y)
    assert mixed != pytest.approx(only_first, rel=1e-3) and mixed != pytest.approx(
        only_second, rel=1e-3
    )


def test_cached_and_live_teachers_give_the_same_term(digits, teacher, second_teacher, student):
    (x, y), _ = digits
    live, _ = _terms(
        student, [teacher, second_teacher], kd.losses.MultiTeacherKD(4.0), x[:128], y[:128], False
    )
    cached, distiller = _terms(
        student, [teacher, second_teacher], kd.losses.MultiTeacherKD(4.0), x[:128], y[:128], True
    )
    assert distiller.teacher_cached
    assert cached == pytest.approx(live, rel=1e-5)


def test_fit_with_two_teachers_trains_the_student_only(digits, teacher, second_teacher, student):
    (x, y), _ = digits
    before = [teacher.get_weights(), second_teacher.get_weights(), student.get_weights()]
    distiller = kd.Distiller(student, [teacher, second_teacher])
    assert isinstance(distiller.distillation_losses[0], kd.losses.MultiTeacherKD)  # the default
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    distiller.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)
    assert weights_equal(teacher.get_weights(), before[0])
    assert weights_equal(second_teacher.get_weights(), before[1])
    assert not weights_equal(student.get_weights(), before[2])


def test_config_and_save_round_trip_keep_every_teacher(
    digits, teacher, second_teacher, student, tmp_path
):
    (x, y), (xt, _) = digits
    distiller = kd.Distiller(
        student, [teacher, second_teacher], losses=[kd.losses.MultiTeacherKD(2.0, [3.0, 1.0])]
    )
    restored = kd.Distiller.from_config(distiller.get_config())
    assert len(restored.teacher) == 2
    assert restored.get_config() == distiller.get_config()
    distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    distiller.fit(x[:64], y[:64], epochs=1, verbose=0)
    distiller.save(tmp_path / "multi.keras")
    loaded = keras.models.load_model(tmp_path / "multi.keras")
    assert [t.count_params() for t in loaded.teacher] == [
        teacher.count_params(),
        second_teacher.count_params(),
    ]
    np.testing.assert_allclose(
        loaded.predict(xt[:8], verbose=0), distiller.predict(xt[:8], verbose=0), atol=1e-6
    )


@pytest.mark.parametrize(
    "make_kwargs, message",
    [
        (
            lambda t, t2, s: {
                "teacher": [t, t2],
                "losses": [kd.losses.AttentionTransfer(pairs=[("t_block2", "s_block2")])],
            },
            r"losses \['attention_transfer'\] take one teacher",
        ),
        (lambda t, t2, s: {"teacher": [t, t]}, "teacher must list each model only once"),
        (lambda t, t2, s: {"teacher": [t, s]}, r"teacher\[1\] and student must be different"),
        (lambda t, t2, s: {"teacher": []}, "non-empty list"),
        (lambda t, t2, s: {"teacher": [t, "big"]}, r"teacher\[1\] must be a keras.Model"),
    ],
)
def test_bad_teacher_lists_raise_before_training(
    teacher, second_teacher, student, make_kwargs, message
):
    with pytest.raises((ValueError, TypeError), match=message):
        kd.Distiller(student=student, **make_kwargs(teacher, second_teacher, student))


def test_top_k_cache_of_stacked_teacher_logits_decodes_per_teacher():
    from keras_kd import cache
    from keras_kd._compat import tf

    logits = tf.constant(np.random.default_rng(0).normal(size=(4, 2, 6)), tf.float32)  # 2 teachers
    store = cache.TeacherCache(lambda x: (x, {}), [], dtype="float32", top_k=2)
    decoded, _ = cache.decode(store._encode(logits, {}), num_classes=6)
    assert decoded.shape == (4, 2, 6)
    top_values, top_indices = tf.math.top_k(logits, k=2)
    np.testing.assert_allclose(tf.gather(decoded, top_indices, batch_dims=2), top_values, rtol=1e-6)
    np.testing.assert_array_equal(tf.argmax(decoded, -1), tf.argmax(logits, -1))
