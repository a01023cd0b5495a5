"""Tests of keras_kd.schemes.self_compress: the float model teaches its own compressed copy."""

import numpy as np
import pytest

from keras_kd import keras, schemes
from keras_kd import losses as kd_losses
from tests.conftest import weights_equal


def _rounded_copy(model):
    """A crude compression: a clone whose weights are rounded to one decimal."""
    copy = keras.models.clone_model(model)
    copy.set_weights([np.round(w, 1) for w in model.get_weights()])
    return copy


def test_self_compress_trains_the_copy_and_never_the_float_model(digits, teacher):
    (x, y), (xt, yt) = digits
    before = teacher.get_weights()
    made = []
    result = schemes.self_compress(
        teacher,
        lambda m: made.append(_rounded_copy(m)) or made[-1],
        (x[:256], y[:256]),
        epochs=1,
        validation_data=(xt[:64], yt[:64]),
    )
    assert result.models == [made[0]] and result.student is made[0] and result.compressed is made[0]
    assert weights_equal(teacher.get_weights(), before)
    rounded = [np.round(w, 1) for w in before]
    assert not weights_equal(result.student.get_weights(), rounded)
    default_loss = kd_losses.defaults()[0][0].name
    assert {"loss", default_loss, "accuracy", "val_accuracy"} <= set(result.histories[0])


def test_self_compress_with_keras_kd_pruning_reaches_the_sparsity(digits, teacher):
    from keras_kd import compress

    (x, y), _ = digits
    result = schemes.self_compress(
        teacher,
        lambda m: compress.prune(m, 0.5, schedule="constant", frequency=1),
        (x[:128], y[:128]),
        epochs=1,
    )
    assert compress.sparsity(compress.strip(result.student))["total"] == pytest.approx(
        0.5, abs=0.05
    )


@pytest.mark.parametrize(
    "compress_fn, message",
    [
        ("prune", "compress_fn must be a callable"),
        (lambda m: m, "returned model itself"),
        (lambda m: "small", "compress_fn must return a keras.Model"),
        (lambda m: keras.Model(m.inputs, m.outputs, name="view"), "shares variables"),
        (
            lambda m: keras.Sequential(
                [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
            ),
            r"compress_fn\(model\) 'sequential.*' outputs shape \(None, 3\) but model 'teacher' "
            r"outputs shape \(None, 10\)",
        ),
    ],
)
def test_self_compress_rejects_bad_compress_fn(digits, teacher, compress_fn, message):
    (x, y), _ = digits
    with pytest.raises(ValueError, match=message):
        schemes.self_compress(teacher, compress_fn, (x[:8], y[:8]), epochs=1)
