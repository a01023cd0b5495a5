"""Tests of the teacher-output cache and of one forward pass per model per step."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import cache, keras
from keras_kd._compat import tf
from tests.conftest import weights_equal


def _sparse_ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _linear(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((12,)), keras.layers.Dense(10, name="logits")], name=f"linear{seed}"
    )


def _twins():
    """A teacher and a student with identical weights: KD is zero exactly when outputs are paired."""
    teacher, student = _linear(0), _linear(1)
    student.set_weights(teacher.get_weights())
    return teacher, student


def _examples(n=320):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 12)).astype(np.float32) * 5, rng.integers(0, 10, n)


class _FeatureMSE(kd.losses.FeatureLoss):
    """Squared difference of channel-mean feature maps: a minimal feature loss for any widths."""

    def call(self, teacher, student):
        means = [(tf.reduce_mean(t, -1), tf.reduce_mean(s, -1)) for t, s in zip(teacher, student)]
        return tf.add_n([tf.reduce_mean(tf.square(t - s)) for t, s in means])


def _fit_twins(data, cache_teacher, **fit_kwargs):
    teacher, student = _twins()
    distiller = kd.Distiller(student, teacher, cache_teacher=cache_teacher, cache_dtype="float32")
    distiller.compile(keras.optimizers.SGD(0.0), _sparse_ce())
    history = distiller.fit(*data, epochs=2, verbose=0, **fit_kwargs)
    return distiller, history.history["dist"]


def test_cached_outputs_stay_paired_with_their_examples_under_shuffling():
    x, y = _examples()
    distiller, kd_values = _fit_twins((x, y), cache_teacher=True, batch_size=32, shuffle=True)
    assert distiller.teacher_cached
    assert max(kd_values) < 1e-8


def test_cached_dataset_is_reshuffled_per_example_and_stays_paired():
    x, y = _examples()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(320).batch(32)
    distiller, kd_values = _fit_twins((dataset,), cache_teacher="auto")
    assert distiller.teacher_cached
    assert max(kd_values) < 1e-8


def test_cache_gives_the_same_training_as_the_live_teacher(digits, teacher, student):
    (x, y), _ = digits
    x, y = x[:256], y[:256]
    initial = student.get_weights()
    results = {}
    for mode in (False, True):
        model = keras.models.clone_model(student)
        model.set_weights(initial)
        distiller = kd.Distiller(model, teacher, cache_teacher=mode, cache_dtype="float32")
        distiller.compile(keras.optimizers.SGD(0.05), _sparse_ce())
        history = distiller.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        results[mode] = (model.get_weights(), history.history["dist"])
    np.testing.assert_allclose(results[True][1], results[False][1], rtol=1e-5)
    # The cache runs the teacher on larger batches than fit, which rounds differently: weights
    # ended 9e-6 apart after 16 steps on an AVX2-only AMD EPYC. The per-epoch distillation loss
    # above (rtol 1e-5) is what a cached output paired with the wrong example would move.
    for cached, live in zip(results[True][0], results[False][0]):
        np.testing.assert_allclose(cached, live, rtol=1e-4, atol=5e-5)


def test_float16_cache_is_close_to_live(digits, teacher, student):
    (x, y), _ = digits
    twin = keras.models.clone_model(student)
    twin.set_weights(student.get_weights())
    live = kd.Distiller(student, teacher, cache_teacher=False)
    cached = kd.Distiller(twin, teacher)
    for distiller in (live, cached):
        distiller.compile(keras.optimizers.SGD(0.0), _sparse_ce())
    fit = {"batch_size": 64, "shuffle": False, "verbose": 0}  # DIST depends on batch make-up
    kd_live = live.fit(x[:256], y[:256], **fit).history["dist"][0]
    kd_cached = cached.fit(x[:256], y[:256], **fit).history["dist"][0]
    assert cached.teacher_cached and not live.teacher_cached
    assert kd_cached == pytest.approx(kd_live, rel=1e-3)


def test_random_augmentation_keeps_the_teacher_live():
    x, y = _examples()
    augmented = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .map(lambda a, b: (a + tf.random.normal(tf.shape(a)), b))
        .batch(32)
    )
    assert cache.decide(augmented, "auto")[0] is False
    with pytest.raises(
        ValueError, match=r"cache_teacher=True, but the dataset has ops .*RandomStandardNormal"
    ):
        cache.decide(augmented, True)
    teacher, student = _twins()
    distiller = kd.Distiller(student, teacher)
    distiller.compile("sgd", _sparse_ce())
    distiller.fit(augmented, epochs=1, verbose=0)
    assert distiller.teacher_cached is False and distiller.teacher_stage.cache.passes == 0


@pytest.mark.parametrize(
    "make_input, expected",
    [
        (lambda x, y: x, True),
        (lambda x, y: {"a": x}, True),
        (lambda x, y: tf.data.Dataset.from_tensor_slices(x).batch(8), True),
        (lambda x, y: tf.data.Dataset.from_tensor_slices(x).batch(8).repeat(), False),
        (lambda x, y: (row for row in x), False),
    ],
)
def test_auto_caches_only_deterministic_finite_inputs(make_input, expected):
    x, y = _examples(16)
    assert cache.decide(make_input(x, y), "auto")[0] is expected


def test_changing_the_teacher_or_the_data_rebuilds_the_cache():
    x, y = _examples()
    teacher, student = _twins()
    distiller = kd.Distiller(student, teacher)
    distiller.compile(keras.optimizers.SGD(0.0), _sparse_ce())
    fit = lambda inputs: distiller.fit(inputs, y, batch_size=32, verbose=0).history["dist"][0]  # noqa: E731
    fit(x)
    fit(x)
    assert distiller.teacher_stage.cache.passes == 1
    teacher.set_weights([w * 2 for w in teacher.get_weights()])
    assert (
        fit(x) > 1e-3
    )  # the student no longer matches the changed teacher: outputs were recomputed
    assert distiller.teacher_stage.cache.passes == 2
    fit(x + 1.0)
    assert distiller.teacher_stage.cache.passes == 3


def test_features_come_from_the_cache(digits, teacher, student):
    (x, y), _ = digits
    pairs = [("t_block1", "s_block1")]

    def run(mode):
        model = keras.models.clone_model(student)
        model.set_weights(student.get_weights())
        feature_teacher = keras.models.clone_model(teacher)
        feature_teacher.set_weights(teacher.get_weights())
        loss = _FeatureMSE(pairs=pairs, name="feature_mse")
        distiller = kd.Distiller(
            model,
            feature_teacher,
            losses=[kd.losses.LogitsKD(), loss],
            cache_teacher=mode,
            cache_dtype="float32",
        )
        distiller.compile(keras.optimizers.SGD(0.0), _sparse_ce(), run_eagerly=True)
        return distiller, distiller.fit(x[:64], y[:64], batch_size=32, verbose=0).history[
            "feature_mse"
        ][0]

    _, live = run(False)
    distiller, cached = run(True)
    assert "feature/t_block1" in distiller.teacher_stage.cache._stored
    assert cached == pytest.approx(live, rel=1e-5)


def _count_calls(layer):
    calls = []
    original = layer.call

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    layer.call = counted
    return calls


@pytest.mark.parametrize("cache_teacher, teacher_calls_per_step", [(False, 1), (True, 0)])
def test_each_model_runs_once_per_step(
    digits, teacher, student, cache_teacher, teacher_calls_per_step
):
    (x, y), _ = digits
    losses = [
        kd.losses.LogitsKD(),
        _FeatureMSE(pairs=[("t_block2", "s_block2")], name="feature_mse"),
    ]
    distiller = kd.Distiller(student, teacher, losses=losses, cache_teacher=cache_teacher)
    distiller.compile(keras.optimizers.SGD(0.01), _sparse_ce(), run_eagerly=True)
    if cache_teacher:
        distiller.teacher_stage.cache.annotate(
            x[:96], batch_size=256
        )  # the one-time pass, outside the count
    teacher_calls = _count_calls(teacher.get_layer("t_block1"))
    student_calls = _count_calls(student.get_layer("s_block1"))
    distiller.fit(x[:96], y[:96], batch_size=32, epochs=1, verbose=0)
    assert len(student_calls) == 3
    assert len(teacher_calls) == 3 * teacher_calls_per_step


def test_top_k_cache_keeps_the_top_logits_and_the_mean_of_the_rest():
    logits = tf.constant([[5.0, 1.0, 3.0, -1.0, 0.0]])
    store = cache.TeacherCache(lambda x: (x, {}), _linear(0), dtype="float32", top_k=2)
    decoded, _ = cache.decode(store._encode(logits, {}), num_classes=5)
    np.testing.assert_allclose(decoded.numpy(), [[5.0, 0.0, 3.0, 0.0, 0.0]], atol=1e-6)


def test_top_k_cache_trains(digits, teacher, student):
    (x, y), _ = digits
    before = student.get_weights()
    distiller = kd.Distiller(student, teacher, cache_top_k=3)
    distiller.compile(keras.optimizers.Adam(1e-2), _sparse_ce())
    history = distiller.fit(x[:128], y[:128], batch_size=32, verbose=0)
    assert np.isfinite(history.history["dist"][0])
    assert not weights_equal(before, student.get_weights())


def test_dataset_cache_on_disk(tmp_path):
    x, y = _examples()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    teacher, student = _twins()
    distiller = kd.Distiller(student, teacher, cache_dir=str(tmp_path), cache_dtype="float32")
    distiller.compile(keras.optimizers.SGD(0.0), _sparse_ce())
    history = distiller.fit(dataset, epochs=2, verbose=0)
    assert distiller.teacher_cached
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("teacher_cache_")]
    assert max(history.history["dist"]) < 1e-8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cache_teacher": "yes"}, "cache_teacher must be"),
        ({"cache_dtype": "int8"}, "cache_dtype must be"),
        ({"cache_top_k": 0}, "cache_top_k must be"),
    ],
)
def test_bad_cache_arguments(kwargs, message):
    teacher, student = _twins()
    with pytest.raises(ValueError, match=message):
        kd.Distiller(student, teacher, **kwargs)


def test_jit_compile_gives_the_same_training(digits, teacher, student):
    (x, y), _ = digits
    initial = student.get_weights()
    weights = []
    for jit in (False, True):
        model = keras.models.clone_model(student)
        model.set_weights(initial)
        distiller = kd.Distiller(model, teacher)
        distiller.compile(
            keras.optimizers.SGD(0.05), _sparse_ce(), metrics=["accuracy"], jit_compile=jit
        )
        distiller.fit(x[:128], y[:128], batch_size=32, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    moved = max(np.abs(w - w0).max() for w, w0 in zip(weights[0], initial))
    assert moved > 2e-2
    # XLA fuses DIST's reductions in another order: float32 round-off, which the correlations
    # amplified to 7e-4 in 4 steps on an AVX2-only AMD EPYC; the tolerance stays 10x below the
    # least the training must have moved the weights.
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-3)


def test_teacher_cache_alone_keeps_each_example_with_its_outputs_through_a_shuffle():
    """The cache component without a Distiller: annotate, shuffle and batch, split, decode."""
    teacher = _linear(0)
    x, _ = _examples(64)
    store = cache.TeacherCache(lambda v: (teacher(v, training=False), {}), teacher, "float32")
    annotated = store.annotate(x, batch_size=16)
    stream = tf.data.Dataset.from_tensor_slices(annotated).shuffle(64, seed=0).batch(16)
    assert cache.split_batch(x) == (x, None)
    for batch in stream:
        inputs, stored = cache.split_batch(batch)
        logits, features = cache.decode(stored, num_classes=10)
        np.testing.assert_allclose(logits, teacher(inputs), rtol=1e-5, atol=1e-5)
        assert features == {}
    store.annotate(x, batch_size=16)
    assert store.passes == 1  # the same teacher and data: no second teacher pass
