"""Property tests (hypothesis) of every loss layer in keras_kd.losses.

For every registered loss, and the KD logit losses with ``standardize=True``: a finite value and
finite gradients for finite inputs (logits up to 1e4, features up to 1e3), a value >= 0 (every loss
here is a divergence, a squared distance, a Huber loss or one minus a correlation; NST's MMD^2 and
PKT's eps-smoothed KL are >= 0 only up to rounding, hence a small tolerance),
the invariances each class's docstring promises, and a batch mean independent of the batch size
(the batch concatenated to itself gives the same value). SimilarityPreserving is the documented
exception: its rows of G have unit norm, so the duplicated batch gives half the loss.

Examples are derandomized so that CI is reproducible.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_kd import losses
from keras_kd._compat import tf

PROPERTY_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CLASSES, MAP, T_CH, S_CH, T_WIDTH, S_WIDTH = 5, (4, 4), 3, 2, 6, 4
FSP_FLOWS = [(("ta", "tb"), ("sa", "sb"))]


def _make(name):
    """A fresh loss of registry ``name`` with the inputs it takes: 'logits', 'maps' or 'fsp'.

    ``name + "+standardize"`` makes the loss with ``standardize=True`` (Sun et al. 2024).
    """
    name, _, option = name.partition("+")
    kwargs = {option: True} if option else {}
    if name in ("kd", "dkd", "multi_kd", "dist", "rkd", "sp", "pkt", "cc"):
        return losses.get(name, **kwargs), "logits"
    if name == "fsp":
        return losses.get(name, flows=FSP_FLOWS), "fsp"
    return losses.get(name, pairs=[("t", "s")]), "maps"


def _inputs(name, kind, rng, scale, batch):
    """(teacher, student, kwargs) for ``name``: arrays of the given magnitude and batch size."""
    name = name.partition("+")[0]

    def draw(*shape):
        # Mixed magnitudes in one tensor: most entries near `scale`, some far smaller.
        values = rng.standard_normal(shape) * scale
        return (values * (rng.random(shape) < 0.8)).astype(np.float32) + rng.standard_normal(
            shape
        ).astype(np.float32)

    if kind == "logits":
        s_width = S_WIDTH if name in ("rkd", "sp", "pkt", "cc") else CLASSES
        t_width = T_WIDTH if name in ("rkd", "sp", "pkt", "cc") else CLASSES
        teacher, student = draw(batch, t_width), draw(batch, s_width)
        if name == "multi_kd":
            teacher = [teacher, draw(batch, CLASSES)]
        kwargs = {"labels": rng.integers(0, CLASSES, batch)} if name == "dkd" else {}
        return teacher, student, kwargs
    if kind == "fsp":  # FSP matrices compare C_a x C_b entries: same channel counts both sides
        return (
            [draw(batch, *MAP, T_CH), draw(batch, *MAP, S_CH)],
            [
                draw(batch, *MAP, T_CH),
                draw(batch, *MAP, S_CH),
            ],
            {},
        )
    return [draw(batch, *MAP, T_CH)], [draw(batch, *MAP, S_CH)], {}


def _as_tensors(value):
    if isinstance(value, list):
        return [tf.constant(v) for v in value]
    return tf.constant(value)


def _value(loss, teacher, student, kwargs):
    kwargs = {k: tf.constant(v) for k, v in kwargs.items()}
    return float(loss(_as_tensors(teacher), _as_tensors(student), **kwargs).numpy())


NAMES = losses.names()
# Every registered loss, and the logit losses with standardized logits.
CASES = NAMES + ["kd+standardize", "dkd+standardize", "multi_kd+standardize"]
SCALE = {"logits": 1e4, "maps": 1e3, "fsp": 1e3}


def test_every_registered_loss_is_covered():
    assert set(NAMES) == {
        "kd",
        "dkd",
        "multi_kd",
        "dist",
        "fitnet",
        "at",
        "fsp",
        "nst",
        "rkd",
        "sp",
        "pkt",
        "cc",
    }


@pytest.mark.parametrize("name", CASES)
@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2**31 - 1), magnitude=st.floats(0.0, 1.0), batch=st.integers(1, 6))
def test_loss_and_gradients_are_finite_and_non_negative(name, seed, magnitude, batch):
    loss, kind = _make(name)
    scale = SCALE[kind] ** magnitude  # from 1 up to 1e4 (logits) or 1e3 (features)
    teacher, student, kwargs = _inputs(name, kind, np.random.default_rng(seed), scale, batch)
    student_t = _as_tensors(student)
    with tf.GradientTape() as tape:
        tape.watch(student_t)
        kw = {k: tf.constant(v) for k, v in kwargs.items()}
        value = loss(_as_tensors(teacher), student_t, **kw)
    grads = tape.gradient(value, [student_t, loss.trainable_variables])
    value = float(value.numpy())
    assert np.isfinite(value), (name, value)
    assert value >= -1e-5 * max(1.0, abs(value)), (name, value)
    for grad in tf.nest.flatten(grads):
        assert grad is not None and np.all(np.isfinite(grad.numpy())), name


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("side", ["teacher", "student", "both"])
def test_all_zero_inputs_give_finite_loss_and_gradients(name, side):
    loss, kind = _make(name)
    teacher, student, kwargs = _inputs(name, kind, np.random.default_rng(0), 1.0, 3)
    if side in ("teacher", "both"):
        teacher = tf.nest.map_structure(np.zeros_like, teacher)
    if side in ("student", "both"):
        student = tf.nest.map_structure(np.zeros_like, student)
    student_t = _as_tensors(student)
    with tf.GradientTape() as tape:
        tape.watch(student_t)
        value = loss(
            _as_tensors(teacher), student_t, **{k: tf.constant(v) for k, v in kwargs.items()}
        )
    grads = tape.gradient(value, [student_t, loss.trainable_variables])
    assert np.isfinite(float(value.numpy()))
    assert all(np.all(np.isfinite(g.numpy())) for g in tf.nest.flatten(grads) if g is not None)


def _shift_rows(rng, x):
    return x + rng.uniform(-10, 10, (x.shape[0], 1)).astype(np.float32)


def _scale_all(rng, x):
    return x * np.float32(rng.uniform(0.1, 10))


def _scale_rows(rng, x):
    return x * rng.uniform(0.1, 10, (x.shape[0],) + (1,) * (x.ndim - 1)).astype(np.float32)


def _scale_channels(rng, x):
    return x * rng.uniform(0.1, 10, (1,) * (x.ndim - 1) + (x.shape[-1],)).astype(np.float32)


def _affine_rows(rng, x):
    """A positive scale and a shift of each row (each example's logits)."""
    return _shift_rows(rng, _scale_rows(rng, x))


def _translate(rng, x):
    return x + rng.uniform(-10, 10, (1, x.shape[1])).astype(np.float32)


def _rotate(rng, x):
    q, _ = np.linalg.qr(rng.standard_normal((x.shape[1], x.shape[1])))
    return (x @ q).astype(np.float32)


def _on(side, transform):
    """Applies ``transform`` to every tensor of the teacher ('t'), student ('s') or both ('ts')."""

    def apply(rng, teacher, student):
        def each(value):
            return (
                [transform(rng, v) for v in value]
                if isinstance(value, list)
                else transform(rng, value)
            )

        return (each(teacher) if "t" in side else teacher), (
            each(student) if "s" in side else student
        )

    return apply


# (loss name, description, transform of (teacher, student), factor the value is multiplied by)
INVARIANCES = [
    ("kd", "constant added to each teacher row", _on("t", _shift_rows), 1.0),
    ("kd", "constant added to each student row", _on("s", _shift_rows), 1.0),
    ("dkd", "constant added to each row of both", _on("ts", _shift_rows), 1.0),
    ("multi_kd", "constant added to each row of any model", _on("ts", _shift_rows), 1.0),
    ("dist", "constant added to each row of both", _on("ts", _shift_rows), 1.0),
    ("kd+standardize", "affine map of each teacher row", _on("t", _affine_rows), 1.0),
    ("kd+standardize", "affine map of each student row", _on("s", _affine_rows), 1.0),
    ("dkd+standardize", "affine map of each row of both", _on("ts", _affine_rows), 1.0),
    ("multi_kd+standardize", "affine map of each row of any model", _on("ts", _affine_rows), 1.0),
    ("at", "positive scaling of the teacher map", _on("t", _scale_all), 1.0),
    ("at", "positive scaling of the student map", _on("s", _scale_all), 1.0),
    ("nst", "positive scaling of each channel", _on("ts", _scale_channels), 1.0),
    ("rkd", "translation of the teacher", _on("t", _translate), 1.0),
    ("rkd", "positive scaling of both", _on("ts", _scale_all), 1.0),
    ("sp", "positive scaling of the student", _on("s", _scale_all), 1.0),
    ("sp", "rotation of the teacher", _on("t", _rotate), 1.0),
    ("pkt", "positive scaling of each example", _on("ts", _scale_rows), 1.0),
    ("pkt", "rotation of the student", _on("s", _rotate), 1.0),
    ("cc", "positive scaling of each example", _on("ts", _scale_rows), 1.0),
    ("cc", "rotation of the teacher", _on("t", _rotate), 1.0),
]


@pytest.mark.parametrize(
    "name, transform, factor",
    [(n, t, f) for n, _, t, f in INVARIANCES],
    ids=[f"{n}-{d.replace(' ', '_')}" for n, d, _, _ in INVARIANCES],
)
@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(2, 6))
def test_promised_invariances(name, transform, factor, seed, batch):
    loss, kind = _make(name)
    rng = np.random.default_rng(seed)
    teacher, student, kwargs = _inputs(name, kind, rng, 3.0, batch)
    before = _value(loss, teacher, student, kwargs)
    after = _value(loss, *transform(rng, teacher, student), kwargs)
    np.testing.assert_allclose(after, factor * before, rtol=2e-3, atol=1e-5)


# FitNet (no adapter) and FSP promise homogeneity rather than invariance; FitNet also symmetry.
@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2**31 - 1), c=st.floats(0.1, 10.0), shift=st.floats(-10, 10))
def test_fitnet_without_adapter_is_symmetric_shift_invariant_and_quadratic(seed, c, shift):
    rng = np.random.default_rng(seed)
    t, s = (rng.standard_normal((3, *MAP, T_CH)).astype(np.float32) for _ in range(2))
    loss = losses.FitNetHint([("t", "s")], adapter="never")
    value = _value(loss, [t], [s], {})
    np.testing.assert_allclose(_value(loss, [s], [t], {}), value, rtol=1e-5)
    np.testing.assert_allclose(_value(loss, [t + shift], [s + shift], {}), value, rtol=2e-3)
    np.testing.assert_allclose(_value(loss, [c * t], [c * s], {}), c**2 * value, rtol=2e-3)


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2**31 - 1), c=st.floats(0.3, 3.0))
def test_fsp_scales_with_the_fourth_power(seed, c):
    loss, kind = _make("fsp")
    teacher, student, _ = _inputs("fsp", kind, np.random.default_rng(seed), 1.0, 3)
    value = _value(loss, teacher, student, {})
    scaled = _value(loss, [c * t for t in teacher], [c * s for s in student], {})
    np.testing.assert_allclose(scaled, c**4 * value, rtol=2e-3, atol=1e-6)


def _doubled(value):
    if isinstance(value, list):
        return [np.concatenate([v, v]) for v in value]
    return np.concatenate([value, value])


@pytest.mark.parametrize("name", CASES)
@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(2, 5))
def test_batch_mean_does_not_depend_on_the_batch_size(name, seed, batch):
    loss, kind = _make(name)
    teacher, student, kwargs = _inputs(name, kind, np.random.default_rng(seed), 3.0, batch)
    value = _value(loss, teacher, student, kwargs)
    doubled = _value(
        loss, _doubled(teacher), _doubled(student), {k: _doubled(v) for k, v in kwargs.items()}
    )
    # SimilarityPreserving's unit-norm rows of G make it shrink like 1/b (its docstring says so).
    expected = value / 2 if name == "sp" else value
    np.testing.assert_allclose(doubled, expected, rtol=2e-3, atol=1e-6)
