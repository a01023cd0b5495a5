"""MixUp and CutMix: the batch-mixing layers used for function matching."""

import numpy as np
import pytest

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf


def test_mixup_produces_convex_combinations_of_two_examples():
    batch = np.eye(16, dtype=np.float32)  # row i is the i-th basis vector, so weights are readable
    mixed = kd.data.MixUp(alpha=0.4)(batch, training=True).numpy()
    assert (mixed >= -1e-7).all()
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)
    assert ((mixed > 1e-7).sum(axis=1) <= 2).all()  # each row mixes itself with one partner
    assert not np.allclose(mixed, batch)


def test_mix_matches_the_formula():
    x = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    mixed = kd.data.mix(x, tf.constant([0.25, 1.0, 0.5]), tf.constant([1, 0, 0]))
    np.testing.assert_allclose(mixed.numpy(), [[2.5, 3.5], [3.0, 4.0], [3.0, 4.0]])


def test_cutmix_pastes_a_box_from_one_partner():
    images = np.stack([np.full((8, 8, 1), float(i)) for i in range(6)]).astype(np.float32)
    mixed = kd.data.CutMix(alpha=1.0)(images, training=True).numpy()
    for i, image in enumerate(mixed):
        values = set(np.unique(image)) - {float(i)}
        assert len(values) <= 1  # pixels come from the image itself or from a single partner
        if values:
            rows, cols = np.nonzero(image[..., 0] != i)
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert box == len(rows)  # the pasted pixels form one rectangle


@pytest.mark.parametrize("layer", [kd.data.MixUp(), kd.data.CutMix()])
def test_mixing_is_off_outside_training(layer):
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(layer(images, training=False).numpy(), images)


@pytest.mark.parametrize("cls", [kd.data.MixUp, kd.data.CutMix])
def test_mixing_layers_round_trip_their_config_and_refuse_bad_alpha(cls):
    layer = cls(alpha=0.3)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, cls) and restored.alpha == 0.3
    with pytest.raises(ValueError, match="received: alpha=0"):
        cls(alpha=0)


def test_cutmix_refuses_inputs_that_are_not_images():
    with pytest.raises(ValueError, match="rank 4"):
        kd.data.CutMix()(np.zeros((4, 8), np.float32), training=True)
