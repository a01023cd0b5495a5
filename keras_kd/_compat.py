"""The single import point of Keras for keras_kd.

tensorflow-model-optimization 0.8 works only with tf_keras (Keras 2), so keras_kd uses tf_keras throughout.
``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is imported so that ``tf.keras`` and the TFLite
converter see the same Keras as keras_kd. Every other module does
``from keras_kd._compat import keras, tf``.
"""

import os
import sys
import warnings

_LEGACY_FLAG = "TF_USE_LEGACY_KERAS"

if "tensorflow" in sys.modules and os.environ.get(_LEGACY_FLAG) not in ("1", "true", "True"):
    warnings.warn(
        "TensorFlow was imported before keras_kd without TF_USE_LEGACY_KERAS=1, so tf.keras is Keras 3 "
        "while keras_kd uses tf_keras. Import keras_kd first, or set TF_USE_LEGACY_KERAS=1 in the "
        "environment, so that both see the same Keras.",
        stacklevel=2,
    )
os.environ.setdefault(_LEGACY_FLAG, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# On one schedulable CPU TensorFlow runs graph ops on one inter-op thread. A teacher computed in
# Python (kd.teachers: a callable, a Keras 3 model) called from the Distiller's compiled step runs
# TensorFlow functions of its own, which wait for that thread while their caller holds it: a
# deadlock. A second inter-op thread (only where the user set none) avoids it.
if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) == 1:
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "2")

import tensorflow as tf  # noqa: E402  (after TF_USE_LEGACY_KERAS is set)
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf"]
