"""Transfer sets: unlabeled inputs for distillation (Hinton et al. 2015 call them the transfer set)."""

import numpy as np

from keras_kd._checks import check_positive_int
from keras_kd._compat import keras, tf

UNLABELED = -1


def with_unlabeled(x, y, x_unlabeled):
    """Appends unlabeled inputs to a labeled set, marking their labels ``-1`` for the Distiller.

    The Distiller computes the hard-label loss only on labeled rows and the distillation losses on
    every row.

    Args:
        x: Labeled inputs, shape ``(n, ...)``.
        y: Integer labels, shape ``(n,)``.
        x_unlabeled: Unlabeled inputs with the same per-example shape as ``x``.

    Returns:
        ``(x_all, y_all)`` numpy arrays with ``len(x) + len(x_unlabeled)`` rows.

    Raises:
        ValueError: If the per-example shapes differ or ``y`` does not match ``x``.

    Example:
        >>> x_all, y_all = with_unlabeled(x_train[:500], y_train[:500], x_train[500:])
    """
    x, y, x_unlabeled = np.asarray(x), np.asarray(y), np.asarray(x_unlabeled)
    if x.shape[1:] != x_unlabeled.shape[1:]:
        raise ValueError(
            f"x_unlabeled examples have shape {x_unlabeled.shape[1:]} but x examples have shape "
            f"{x.shape[1:]}; x_unlabeled must match x, received: "
            f"x_unlabeled=<array of shape {x_unlabeled.shape}>"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"y must hold one integer label per row of x ({len(x)}), received: "
            f"y=<array of shape {y.shape}>"
        )
    x_all = np.concatenate([x, x_unlabeled.astype(x.dtype)])
    y_all = np.concatenate([y.astype(np.int64), np.full(len(x_unlabeled), UNLABELED, np.int64)])
    return x_all, y_all


def label_with_teacher(teacher, x, batch_size=1024, dtype="float16"):
    """Runs the teacher once over a large input set, in batches, and returns its logits.

    For fixed inputs the Distiller's cache does this by itself; use this to keep teacher outputs on
    disk, to inspect them, or to train elsewhere on soft labels.

    Args:
        teacher: A Keras model that outputs logits.
        x: Inputs, an array of shape ``(n, ...)``.
        batch_size: Examples per teacher call, >= 1.
        dtype: ``"float16"`` (compact, the default) or ``"float32"``.

    Returns:
        A numpy array of logits, shape ``(n, classes)``.

    Raises:
        ValueError: If ``x`` is empty, ``batch_size`` < 1 or ``dtype`` is neither float16 nor
            float32.
        TypeError: If ``teacher`` is not a ``keras.Model``.

    Example:
        >>> soft = label_with_teacher(teacher, x_unlabeled, batch_size=512)
    """
    if not isinstance(teacher, keras.Model):
        raise TypeError(
            f"teacher must be a keras.Model (from keras_kd import keras), received: teacher={teacher!r}"
        )
    if len(x) == 0:
        raise ValueError(
            f"x must hold at least one example, received: x=<array of shape {tuple(np.shape(x))}>"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    if dtype not in ("float16", "float32"):
        raise ValueError(f'dtype must be "float16" or "float32", received: dtype={dtype!r}')
    forward = tf.function(lambda batch: teacher(batch, training=False), reduce_retracing=True)
    parts = [
        forward(x[start : start + batch_size]).numpy().astype(dtype)
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts)
