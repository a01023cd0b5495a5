"""keras_kd uses tf_keras, and tf.keras is the same Keras once keras_kd is imported."""

import tf_keras

from keras_kd import keras
from keras_kd._compat import tf


def test_keras_is_tf_keras():
    assert keras is tf_keras
    assert keras.__version__.startswith("2.")


def test_tf_keras_and_keras_kd_share_one_keras():
    assert tf.keras.Model is keras.Model
