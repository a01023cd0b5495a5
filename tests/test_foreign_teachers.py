"""Teachers from anywhere: Keras 3 models, SavedModels, .tflite files, callables, and mixed lists.

Every kind distills with logit losses through the teacher-output cache (one teacher pass per
dataset) and runs live under augmentation; a .tflite, SavedModel or callable teacher made from a
Keras teacher caches the same logits as that Keras teacher. Feature losses need a Keras teacher.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import cache
from keras_kd._compat import keras, tf
from keras_kd._keras3 import import_keras3

keras3 = import_keras3()
TRAIN = 256
KINDS = ("tf_keras", "keras3", "saved_model", "tflite", "callable")


@pytest.fixture(scope="module")
def data(digits):
    (x, y), _ = digits
    return x[:TRAIN], y[:TRAIN]


@pytest.fixture(scope="module")
def keras3_teacher(data):
    x, y = data
    keras3.utils.set_random_seed(0)
    inputs = keras3.Input((8, 8, 1), name="image")
    h = keras3.layers.Conv2D(8, 3, activation="relu", name="t_conv")(inputs)
    h = keras3.layers.Flatten(name="t_flat")(h)
    teacher = keras3.Model(inputs, keras3.layers.Dense(10, name="logits")(h), name="k3_teacher")
    teacher.compile("adam", keras3.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x, y, epochs=3, batch_size=32, verbose=0)
    return teacher


@pytest.fixture(scope="module")
def files(keras3_teacher, tmp_path_factory):
    """The teacher as a .tflite file (float) and as a SavedModel directory."""
    folder = tmp_path_factory.mktemp("foreign_teachers")
    tflite = str(folder / "teacher.tflite")
    kd.export.to_tflite(kd.bridge.from_keras3(keras3_teacher), tflite, target="float")
    saved_model = str(folder / "teacher_saved_model")
    keras3_teacher.export(saved_model, verbose=False)
    return {"tflite": tflite, "saved_model": saved_model}


@pytest.fixture(scope="module")
def reference_logits(keras3_teacher, data):
    return np.asarray(keras3_teacher.predict(data[0], verbose=0))


def _teacher(kind, keras3_teacher, files):
    if kind == "tf_keras":
        return kd.bridge.from_keras3(keras3_teacher)
    if kind == "keras3":
        return keras3_teacher
    if kind == "callable":
        return lambda x: np.asarray(keras3_teacher.predict_on_batch(x))
    return files[kind]


def _student(seed=1):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="s_conv")(inputs)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(10)(h), name="student")


def _compiled(distiller):
    distiller.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    return distiller


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_teacher_distills_through_the_cache(kind, keras3_teacher, files, data):
    x, y = data
    student = _student()
    before = [w.copy() for w in student.get_weights()]
    teacher = _teacher(kind, keras3_teacher, files)
    distiller = _compiled(kd.Distiller(student=student, teacher=teacher))
    history = distiller.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert distiller.teacher_cached and distiller.teacher_stage.cache.passes == 1
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert history.history["dist"][-1] > 0
    assert any(not np.array_equal(a, b) for a, b in zip(before, student.get_weights()))


@pytest.mark.parametrize("kind", ("keras3", "saved_model", "tflite", "callable"))
def test_foreign_teacher_caches_the_logits_of_the_keras_teacher_it_came_from(
    kind, keras3_teacher, files, data, reference_logits
):
    x, y = data
    distiller = kd.Distiller(
        student=_student(), teacher=_teacher(kind, keras3_teacher, files), cache_dtype="float32"
    )
    stored = distiller.teacher_stage.cache.annotate(x, batch_size=100)[cache.TEACHER_KEY]
    difference = np.max(np.abs(stored["logits"] - reference_logits))
    assert difference <= 1e-5, f"{kind}: cached logits differ by {difference}"


def test_a_list_of_teachers_may_mix_kinds(keras3_teacher, files, data, reference_logits):
    x, y = data
    teachers = [_teacher(kind, keras3_teacher, files) for kind in KINDS]
    distiller = kd.Distiller(
        student=_student(),
        teacher=teachers,
        losses=[kd.losses.MultiTeacherKD(temperature=4.0)],
        cache_dtype="float32",
    )
    assert [type(t).__name__ for t in distiller.teacher[1:]] == [
        "Keras3Teacher",
        "SavedModelTeacher",
        "TFLiteTeacher",
        "CallableTeacher",
    ]
    stored = distiller.teacher_stage.cache.annotate(x, batch_size=100)[cache.TEACHER_KEY]["logits"]
    assert stored.shape == (TRAIN, len(KINDS), 10)
    np.testing.assert_allclose(stored, np.stack([reference_logits] * len(KINDS), 1), atol=1e-5)
    history = _compiled(distiller).fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(history.history["multi_teacher_kd"][0])


@pytest.mark.parametrize("kind", ("keras3", "tflite", "callable"))
def test_foreign_teacher_runs_live_on_each_augmented_batch(kind, keras3_teacher, files, data):
    x, y = data
    teacher = _teacher(kind, keras3_teacher, files)
    seen = []
    if kind == "callable":
        inner = teacher
        teacher = kd.teachers.CallableTeacher(
            lambda batch: seen.append(batch.copy()) or inner(batch), name="counting"
        )
    distiller = kd.Distiller(
        student=_student(), teacher=teacher, augment=keras.layers.GaussianNoise(0.1)
    )
    _compiled(distiller).fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert distiller.teacher_cached is False
    if kind == "callable":
        augmented = [b for b in seen if len(b) == 64]
        assert len(augmented) >= TRAIN // 64  # once per batch (plus the shape probe)
        assert not any(np.allclose(b, x[: len(b)]) for b in augmented)  # saw the noisy view


def test_keras3_teacher_feature_losses_tap_its_layers(keras3_teacher, data):
    x, y = data
    loss = kd.losses.AttentionTransfer(pairs=[("t_conv", "s_conv")])
    distiller = kd.Distiller(
        student=_student(),
        teacher=keras3_teacher,
        losses=[kd.losses.LogitsKD(), loss],
        cache_dtype="float32",
    )
    stored = distiller.teacher_stage.cache.annotate(x, batch_size=100)[cache.TEACHER_KEY]
    tap = keras3.Model(keras3_teacher.inputs, keras3_teacher.get_layer("t_conv").output)
    np.testing.assert_allclose(stored["feature/t_conv"], tap.predict(x, verbose=0), atol=1e-5)
    history = _compiled(distiller).fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert history.history["attention_transfer"][0] > 0


def test_keras3_teacher_unknown_layer_is_named(keras3_teacher):
    loss = kd.losses.AttentionTransfer(pairs=[("no_such_layer", "s_conv")])
    with pytest.raises(ValueError, match=r"has no layer named 'no_such_layer'.*t_conv"):
        kd.Distiller(student=_student(), teacher=keras3_teacher, losses=[loss])


@pytest.mark.parametrize("kind", ("saved_model", "tflite", "callable"))
def test_feature_losses_refuse_teachers_without_layers(kind, keras3_teacher, files):
    loss = kd.losses.AttentionTransfer(pairs=[("t_conv", "s_conv")])
    with pytest.raises(ValueError, match=r"cannot be tapped; feature losses need a Keras teacher"):
        kd.Distiller(
            student=_student(), teacher=_teacher(kind, keras3_teacher, files), losses=[loss]
        )


def test_callable_teacher_of_another_class_count_is_refused_before_training():
    with pytest.raises(ValueError, match=r"same classes"):
        kd.Distiller(student=_student(), teacher=lambda x: np.zeros((len(x), 5), np.float32))


def test_callable_teacher_returning_a_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(batch, classes\).*received: an array of shape \(3,\)"):
        kd.Distiller(student=_student(), teacher=lambda x: np.zeros(3, np.float32))


def test_keras3_teacher_ending_in_softmax_is_refused():
    teacher = keras3.Sequential(
        [keras3.Input((8, 8, 1)), keras3.layers.Flatten(), keras3.layers.Dense(10, "softmax")],
        name="soft3",
    )
    with pytest.raises(ValueError, match=r"ends in a softmax.*received: teacher='soft3'"):
        kd.Distiller(student=_student(), teacher=teacher)


def test_unknown_teacher_kinds_are_refused_with_the_kinds_listed(tmp_path):
    with pytest.raises(
        TypeError, match=r"keras.Model \(tf_keras or Keras 3\).*received: teacher=42"
    ):
        kd.Distiller(student=_student(), teacher=42)
    missing = str(tmp_path / "teacher.tflite")
    with pytest.raises(ValueError, match=r"\.tflite file.*received: teacher='.*', which does not"):
        kd.Distiller(student=_student(), teacher=missing)


def test_tflite_teacher_with_a_fixed_batch_runs_in_padded_chunks(files, data, reference_logits):
    teacher = kd.teachers.TFLiteTeacher(files["tflite"])
    teacher._fixed_batch = 24  # as a file converted with batch 24: 256 = 10 chunks + 16
    logits = teacher(tf.constant(data[0])).numpy()
    np.testing.assert_allclose(logits, reference_logits, atol=1e-5)


def test_distiller_config_keeps_a_file_teacher_and_refuses_an_in_memory_one(keras3_teacher, files):
    distiller = kd.Distiller(student=_student(), teacher=files["tflite"])
    config = distiller.get_config()
    assert config["teacher"] == {
        "class_name": "keras_kd>TFLiteTeacher",
        "config": {"path": files["tflite"]},
    }
    rebuilt = kd.Distiller.from_config(config)
    assert isinstance(rebuilt.teacher, kd.teachers.TFLiteTeacher)
    distiller = kd.Distiller(student=_student(), teacher=keras3_teacher)
    with pytest.raises(ValueError, match=r"Keras 3 model .* cannot be serialized.*save_student"):
        distiller.get_config()


def test_live_foreign_teacher_under_mirrored_strategy(files, data):
    x, y = data
    # Reduce on one device: collective ops keyed by earlier strategies in this process can clash.
    strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )
    with strategy.scope():
        distiller = kd.Distiller(
            student=_student(),
            teacher=files["tflite"],
            augment=keras.layers.GaussianNoise(0.1),
            losses=[kd.losses.LogitsKD()],  # per-example: DIST correlates within each replica
        )
        _compiled(distiller)
    history = distiller.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_a_keras3_file_path_teacher_is_loaded_bridged_and_tappable(keras3_teacher, tmp_path):
    path = str(tmp_path / "teacher.keras")
    keras3_teacher.save(path)
    loss = kd.losses.AttentionTransfer(pairs=[("t_conv", "s_conv")])
    distiller = kd.Distiller(student=_student(), teacher=path, losses=[kd.losses.LogitsKD(), loss])
    assert isinstance(distiller.teacher, keras.Model) and distiller.teacher.name == "k3_teacher"


def test_integer_tflite_teacher_is_quantized_in_and_dequantized_out(
    keras3_teacher, data, reference_logits, tmp_path
):
    path = str(tmp_path / "teacher_watch.tflite")
    teacher = kd.bridge.from_keras3(keras3_teacher)
    kd.export.to_tflite(teacher, path, target="watch", representative_data=data[0])
    int8 = kd.teachers.TFLiteTeacher(path)
    assert int8._interpreter.get_input_details()[0]["dtype"] == np.int8
    logits = int8(tf.constant(data[0])).numpy()
    assert logits.dtype == np.float32 and logits.shape == reference_logits.shape
    agreement = np.mean(logits.argmax(1) == reference_logits.argmax(1))
    assert agreement >= 0.95, agreement


_ONE_CPU_PROGRAM = """
import os
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
import os
import subprocess
import sys

import numpy as np
import keras_kd as kd
from keras_kd import keras
from keras_kd._keras3 import import_keras3

assert os.environ["TF_NUM_INTEROP_THREADS"] == "2"
keras3 = import_keras3()
inputs = keras3.Input((4,))
teacher3 = keras3.Model(inputs, keras3.layers.Dense(3)(inputs))
student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
for cache_teacher in (True, False):
    distiller = kd.Distiller(
        student,
        lambda batch: teacher3.predict_on_batch(batch),
        alpha=0.0,
        cache_teacher=cache_teacher,
    )
    distiller.compile("adam")
    distiller.fit(x, epochs=1, batch_size=16, verbose=0)
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_a_python_teacher_running_tensorflow_does_not_deadlock_on_one_cpu():
    # A callable teacher that runs TensorFlow functions of its own, called from the Distiller's
    # graph, waited forever for TensorFlow's only inter-op thread on a one-CPU machine.
    done = subprocess.run(
        [sys.executable, "-c", _ONE_CPU_PROGRAM], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.parametrize("how", ["environment", "api", "neither"])
def test_a_python_teacher_warns_when_tensorflow_has_one_inter_op_thread(monkeypatch, how):
    teacher = kd.teachers.CallableTeacher(lambda x: np.zeros((len(x), 3)), name="numpy_teacher")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1" if how == "environment" else "2")
    monkeypatch.setattr(
        tf.config.threading,
        "get_inter_op_parallelism_threads",
        lambda: 1 if how == "api" else 0,
    )
    trace = tf.function(teacher.call).get_concrete_function
    spec = tf.TensorSpec((None, 4), tf.float32)
    if how == "neither":
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            trace(spec)
    else:
        with pytest.warns(RuntimeWarning, match="'numpy_teacher'.*one inter-op thread.*hangs"):
            trace(spec)
