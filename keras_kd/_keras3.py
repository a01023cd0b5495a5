"""Keras 3 beside tf_keras: recognizing its models and importing it without touching tf.keras.

``TF_USE_LEGACY_KERAS=1`` (set by ``keras_kd._compat``) makes ``tf.keras`` tf_keras; ``import keras``
still gives Keras 3, so both live in one process. Keras 3 is imported only when a Keras 3 model or
file is actually met.
"""

import sys


def is_keras3_model(model):
    """Whether ``model`` is a Keras 3 ``keras.Model``; never imports Keras 3 itself."""
    keras3 = sys.modules.get("keras")
    return keras3 is not None and isinstance(model, getattr(keras3, "Model", ()))


def import_keras3():
    """Returns the Keras 3 module.

    Raises:
        ImportError: If the installed ``keras`` is not Keras 3.
    """
    import keras

    if not keras.__version__.startswith("3."):
        raise ImportError(
            f"Keras 3 is needed here, but the installed keras is {keras.__version__}; install "
            "keras>=3 (pip install 'keras>=3'), which lives beside tf_keras"
        )
    return keras
