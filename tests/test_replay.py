"""Replayed views (keras_kd.replay, keras_kd.data.views): the student sees the view the teacher labeled.

Probe layers record the student's input at every step and the teacher logits the loss receives; the
teacher run now on the recorded input must give the logits that were used (float32 storage, so the
match is tight). Replay must also train exactly like live teaching on the same views, run the
teacher once per view, rebuild when its inputs change, resume with BackupAndRestore, and refuse by
name what it cannot replay.
"""

import types

import numpy as np
import pytest

import keras_kd as kd
from examples.models import make_teacher
from keras_kd import keras
from keras_kd._compat import tf
from keras_kd.data import _view_ops, views
from tests.conftest import weights_equal

L = keras.layers
N, BATCH = 64, 32


class _Probe(L.Layer):
    """Records the student's training inputs (the Distiller runs eagerly in these tests)."""

    def __init__(self, seen, **kwargs):
        super().__init__(**kwargs)
        self.seen = seen

    def call(self, inputs, training=None):
        if training and tf.executing_eagerly():
            self.seen.append(np.array(inputs))
        return inputs


class _Recording(kd.losses.LogitsKD):
    """LogitsKD that records the teacher logits it is given."""

    def __init__(self, used, **kwargs):
        super().__init__(temperature=2.0, **kwargs)
        self.used = used

    def call(self, teacher, student):
        if tf.executing_eagerly():
            self.used.append(np.array(teacher))
        return super().call(teacher, student)


def _student(shape, seen=None):
    keras.utils.set_random_seed(2)
    layers = [keras.Input(shape)] + ([_Probe(seen)] if seen is not None else [])
    layers += [L.Conv2D(4, 3, padding="same", activation="relu"), L.GlobalAveragePooling2D()]
    return keras.Sequential(layers + [L.Dense(10)], name="student")


def _teacher(shape):
    keras.utils.set_random_seed(1)
    return make_teacher(shape, 10, width=8)


@pytest.fixture(scope="module")
def x(digits):
    (x_train, _), _ = digits
    return x_train[:N]


KINDS = {
    "crop": lambda: L.RandomCrop(6, 6),
    "flip": lambda: L.RandomFlip("horizontal_and_vertical"),
    "translation": lambda: L.RandomTranslation(0.25, 0.25),
    "rotation": lambda: L.RandomRotation(0.2, fill_mode="constant"),
    "zoom": lambda: L.RandomZoom(0.3, 0.2),
    "contrast": lambda: L.RandomContrast(0.5),
    "mixup": lambda: kd.data.MixUp(0.4),
    "cutmix": lambda: kd.data.CutMix(1.0),
    "chain": lambda: keras.Sequential(
        [L.RandomTranslation(0.1, 0.1), L.RandomFlip("horizontal"), kd.data.MixUp(1.0)]
        + [L.RandomContrast(0.2)]
    ),
}


def _distiller(augment, student, teacher, views=3, **kwargs):
    used = kwargs.pop("used", [])
    kwargs.setdefault("cache_dtype", "float32")
    if views:
        kwargs["replay_views"] = views
    distiller = kd.Distiller(
        student, teacher, losses=[_Recording(used)], alpha=0.0, augment=augment, **kwargs
    )
    distiller.compile(keras.optimizers.SGD(0.05), run_eagerly=True)
    return distiller


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_student_input_at_every_step_is_the_view_whose_stored_output_is_used(x, kind):
    augment = KINDS[kind]()
    shape = (6, 6, 1) if kind == "crop" else x.shape[1:]
    seen, used = [], []
    teacher = _teacher(shape)
    distiller = _distiller(augment, _student(shape, seen), teacher, used=used)
    distiller.fit(x, epochs=2, batch_size=BATCH, verbose=0)
    assert distiller.teacher_cached and len(seen) == len(used) == 2 * N // BATCH
    for view, logits in zip(seen, used):
        np.testing.assert_allclose(teacher(view, training=False), logits, rtol=1e-5, atol=1e-6)
        assert not np.allclose(teacher(view[1:], training=False), logits[:-1], atol=1e-4)
    originals = {row.tobytes() for row in np.asarray(x, np.float32)}
    unchanged = np.mean([row.tobytes() in originals for batch in seen for row in batch])
    assert unchanged < 0.5  # the student really trains on augmented views


def test_views_cycle_through_all_k_per_example_then_repeat(x):
    seen = []
    distiller = _distiller(
        L.RandomTranslation(0.3, 0.3), _student(x.shape[1:], seen), _teacher(x.shape[1:])
    )
    distiller.fit(x, epochs=4, batch_size=N, shuffle=False, verbose=0)
    first, second, third, fourth = seen
    for a, b in ((first, second), (first, third), (second, third)):
        assert np.mean([np.array_equal(u, v) for u, v in zip(a, b)]) < 0.1
    np.testing.assert_array_equal(fourth, first)  # K=3: epoch 3 replays epoch 0's views


def test_replay_trains_exactly_like_live_teaching_on_the_same_views(x):
    augment = keras.Sequential([L.RandomTranslation(0.2, 0.2), kd.data.MixUp(1.0)])
    student, teacher = _student(x.shape[1:]), _teacher(x.shape[1:])
    initial = student.get_weights()
    replayed = _distiller(augment, student, teacher, views=4)
    replay_history = replayed.fit(x, epochs=3, batch_size=BATCH, verbose=0).history["loss"]
    stream, _ = replayed.replay.dataset(x, batch_size=BATCH, epochs=3)
    views_seen = np.concatenate([inputs[kd.cache.INPUTS_KEY].numpy() for (inputs,) in stream])
    live_student = _student(x.shape[1:])
    live_student.set_weights(initial)
    live = _distiller(None, live_student, teacher, views=0, cache_teacher=False)
    live_history = live.fit(
        tf.data.Dataset.from_tensor_slices(views_seen).batch(BATCH),
        epochs=3,
        steps_per_epoch=N // BATCH,
        verbose=0,
    ).history["loss"]
    assert not live.teacher_cached
    np.testing.assert_allclose(replay_history, live_history, rtol=1e-5)
    for a, b in zip(student.get_weights(), live_student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_teacher_runs_once_per_view_and_reruns_only_when_teacher_or_data_change(x):
    teacher = _teacher(x.shape[1:])
    distiller = _distiller(L.RandomFlip("horizontal"), _student(x.shape[1:]), teacher, views=5)
    distiller.compile(keras.optimizers.SGD(0.05))
    distiller.fit(x, epochs=2, batch_size=BATCH, verbose=0)
    replay = distiller.replay
    assert (replay.passes, replay.teacher_examples) == (1, 5 * N)
    distiller.fit(x, epochs=1, batch_size=BATCH, verbose=0)
    assert replay.passes == 1
    teacher.layers[-1].bias.assign_add(tf.ones_like(teacher.layers[-1].bias))
    distiller.fit(x, epochs=1, batch_size=BATCH, verbose=0)
    assert replay.passes == 2
    distiller.fit(x[: N // 2], epochs=1, batch_size=BATCH, verbose=0)
    assert (replay.passes, replay.teacher_examples) == (3, 5 * N // 2)


def test_disk_storage_is_reused_across_runs_and_keyed_by_the_augmentation(x, tmp_path):
    teacher = _teacher(x.shape[1:])

    def run(augment):
        distiller = _distiller(
            augment, _student(x.shape[1:]), teacher, views=2, cache_dir=str(tmp_path)
        )
        distiller.compile(keras.optimizers.SGD(0.05))
        history = distiller.fit(x, epochs=2, batch_size=BATCH, verbose=0).history["loss"]
        return distiller.replay, history

    first, first_losses = run(L.RandomZoom(0.2))
    again, again_losses = run(L.RandomZoom(0.2))
    other, _ = run(L.RandomZoom(0.3))
    assert (first.passes, first.loaded) == (1, False)
    assert (again.passes, again.loaded) == (0, True)
    assert isinstance(again._stored["logits"], np.memmap)
    np.testing.assert_allclose(again_losses, first_losses, rtol=1e-6)
    assert (other.passes, other.loaded) == (1, False)
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("replay_")]) == 2


def test_backup_and_restore_resumes_a_replayed_run_to_identical_weights(digits, tmp_path):
    """Killed after epoch 1's second step, before its backup: the restart skips 4 batches."""
    x = digits[0][0][:96]  # 3 steps per epoch
    teacher = _teacher(x.shape[1:])
    initial = _student(x.shape[1:]).get_weights()
    augment = keras.Sequential([L.RandomTranslation(0.2, 0.2), kd.data.CutMix(1.0)])

    def run(backup_dir, stop_at=None):
        student = _student(x.shape[1:])
        student.set_weights(initial)
        distiller = _distiller(augment, student, teacher, views=3)
        distiller.compile(keras.optimizers.Adam(1e-2))
        callbacks = [kd.resilience.BackupAndRestore(str(backup_dir), save_freq=1)]
        if stop_at is not None:
            callbacks.append(_StopAt(stop_at))
        distiller.fit(x, epochs=2, batch_size=BATCH, callbacks=callbacks, verbose=0)
        return student.get_weights()

    uninterrupted = run(tmp_path / "a")
    with pytest.raises(RuntimeError, match="stopped"):
        run(tmp_path / "b", stop_at=(1, 1))
    resumed = run(tmp_path / "b")
    assert weights_equal(resumed, uninterrupted)


class _StopAt(keras.callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at, self.epoch = at, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise RuntimeError("stopped")


def test_dataset_input_and_validation_split_are_replayed(x, digits):
    (_, y), _ = digits
    distiller = _distiller(L.RandomFlip("horizontal"), _student(x.shape[1:]), _teacher(x.shape[1:]))
    distiller.compile(keras.optimizers.SGD(0.05), metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices((x, y[:N])).batch(BATCH)
    history = distiller.fit(dataset, epochs=1, verbose=0).history
    assert distiller.replay.teacher_examples == 3 * N and "accuracy" in history
    history = distiller.fit(x, y[:N], validation_split=0.25, epochs=1, batch_size=BATCH, verbose=0)
    assert distiller.replay.teacher_examples == 3 * (N - N // 4)
    assert "val_accuracy" in history.history


@pytest.mark.parametrize(
    "augment, message",
    [
        (keras.Sequential([L.RandomFlip(), L.GaussianNoise(0.1, name="noise")]), "'noise'"),
        (L.RandomBrightness(0.2, name="bright"), "'bright' \\(RandomBrightness\\)"),
        (keras.Sequential([kd.data.MixUp(), kd.data.CutMix()]), "at most one layer that mixes"),
    ],
)
def test_a_layer_that_cannot_be_replayed_is_refused_by_name(x, augment, message):
    with pytest.raises(ValueError, match=message):
        kd.Distiller(
            _student(x.shape[1:]), _teacher(x.shape[1:]), alpha=0.0, augment=augment, replay_views=2
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"replay_views": 0},
            "replay_views must be None or an integer >= 1, received: replay_views=0",
        ),
        ({"replay_views": 2, "augment": None}, "replay_views replays views of the augment layer"),
        ({"replay_views": 2, "cache_teacher": False}, "cache_teacher=False"),
        ({"replay_views": 2, "replay_seed": -1}, "replay_seed must be an integer >= 0"),
    ],
)
def test_bad_replay_arguments_are_refused_before_training(x, kwargs, message):
    kwargs = {"augment": L.RandomFlip(), **kwargs}
    with pytest.raises(ValueError, match=message):
        kd.Distiller(_student(x.shape[1:]), _teacher(x.shape[1:]), alpha=0.0, **kwargs)


def test_steps_per_epoch_is_refused_with_replay(x):
    distiller = _distiller(L.RandomFlip(), _student(x.shape[1:]), _teacher(x.shape[1:]))
    with pytest.raises(ValueError, match="steps_per_epoch cannot be used with replay_views"):
        distiller.fit(x, epochs=1, steps_per_epoch=2, verbose=0)


@pytest.mark.parametrize(
    "layer",
    [
        L.RandomTranslation((0.2, 0.2), (-0.1, -0.1), fill_mode="constant"),
        L.RandomTranslation((-0.3, -0.3), (0.25, 0.25), fill_mode="reflect"),
        L.RandomRotation((0.05, 0.05)),
        L.RandomZoom((0.2, 0.2), (-0.1, -0.1), fill_mode="nearest"),
        L.RandomZoom((-0.3, -0.3)),
    ],
)
def test_geometric_ops_match_keras_layers_at_fixed_parameters(x, layer):
    """With a zero-width range Keras's layer is deterministic, so the replayed op must equal it
    (rotation matrices are computed in float64 here, in float32 by Keras)."""
    keys = views.view_keys(0, tf.range(8))
    rendered = views.view_plan(layer).render(x[:8], keys)
    np.testing.assert_allclose(rendered, layer(x[:8], training=True), atol=1e-5)


def test_flip_crop_and_contrast_match_their_keras_and_tf_definitions(x):
    keys = views.view_keys(5, tf.range(32))
    flipped = views.view_plan(L.RandomFlip("horizontal")).render(x[:32], keys).numpy()
    mirrored = x[:32, :, ::-1]
    is_mirror = [
        np.array_equal(f, m) and not np.array_equal(m, o) for f, m, o in zip(flipped, mirrored, x)
    ]
    is_same = [np.array_equal(f, o) for f, o in zip(flipped, x[:32])]
    assert all(a or b for a, b in zip(is_mirror, is_same)) and 5 < sum(is_mirror) < 27
    cropped = views.view_plan(L.RandomCrop(5, 6)).render(x[:32], keys).numpy()
    windows = [
        {x[i, r : r + 5, c : c + 6].tobytes() for r in range(4) for c in range(3)}
        for i in range(32)
    ]
    assert all(c.tobytes() in w for c, w in zip(cropped, windows))
    fixed = types.SimpleNamespace(lower=-0.5, upper=0.5)  # factor 1.5 for every view
    images = x[:4] * 255.0
    expected = tf.clip_by_value(tf.image.adjust_contrast(images, 1.5), 0, 255)
    np.testing.assert_allclose(_view_ops.contrast(fixed, images, keys[:4], 0), expected, atol=1e-3)


def test_views_are_the_same_in_any_batch_and_differ_by_seed(x):
    plan = views.view_plan(KINDS["chain"]())
    partners, coefficients = plan.draw_partners(N, 1, seed=0)
    rows = tf.range(N)
    whole = plan.render(x, views.view_keys(0, rows), x[partners], coefficients).numpy()
    pieces = [
        plan.render(
            x[i : i + 7],
            views.view_keys(0, rows[i : i + 7]),
            x[partners[i : i + 7]],
            coefficients[i : i + 7],
        )
        for i in range(0, N, 7)
    ]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    assert (partners != np.arange(N)).all()
    other = plan.render(x, views.view_keys(1, rows), x[partners], coefficients).numpy()
    assert not np.allclose(other, whole)


def test_replay_cache_alone_gives_each_view_with_the_teachers_outputs_on_it(x):
    """The replay component without a Distiller: any training loop can consume its stream."""
    teacher = _teacher(x.shape[1:])
    store = kd.replay.ReplayCache(
        lambda v: (teacher(v, training=False), {}),
        teacher,
        L.RandomTranslation(0.2, 0.2),
        views=2,
        dtype="float32",
    )
    stream, steps = store.dataset(x, batch_size=BATCH, epochs=2)
    batches = [kd.cache.split_batch(batch) for (batch,) in stream]
    assert steps == N // BATCH and len(batches) == 2 * steps and store.passes == 1
    for view, stored in batches:
        logits, _ = kd.cache.decode(stored, num_classes=10)
        np.testing.assert_allclose(logits, teacher(view, training=False), atol=1e-5)
