"""Labels in a distillation batch: sparse or one-hot, with unlabeled rows (transfer-set examples).

An unlabeled row has the sparse label ``-1`` (``keras_kd.data.UNLABELED``) or an all-zero one-hot row.
"""

import numpy as np

from keras_kd._compat import tf


def is_one_hot(y, logits):
    return (
        y.shape.rank is not None
        and y.shape.rank == logits.shape.rank
        and y.shape[-1] == logits.shape[-1] != 1
    )


def labeled_mask(y, logits):
    """1.0 for rows with a label, 0.0 for unlabeled rows (sparse label -1, or an all-zero one-hot row)."""
    if is_one_hot(y, logits):
        return tf.cast(tf.reduce_sum(tf.cast(y, tf.float32), axis=-1) > 0, tf.float32)
    return tf.cast(tf.reshape(y, [tf.shape(logits)[0], -1])[:, 0] >= 0, tf.float32)


def check_some_labels(alpha, x, y):
    """Before training: with alpha > 0, array inputs need labels and at least one labeled example."""
    if alpha == 0 or not isinstance(x, (np.ndarray, tf.Tensor, dict, list, tuple)):
        return  # datasets and generators carry their own labels; the first step checks them
    if y is None:
        raise ValueError(
            f"alpha={alpha} > 0 needs labels, but fit received y=None; pass y or set alpha=0"
        )
    labels = np.asarray(y)
    if labels.ndim > 1 and labels.shape[-1] > 1:
        unlabeled = labels.sum(axis=-1) == 0
    else:
        unlabeled = labels.reshape(len(labels), -1)[:, 0] < 0
    if labels.size and unlabeled.all():
        raise ValueError(
            f"alpha={alpha} > 0 needs labels, but every example in y is unlabeled (-1 or an all-zero "
            "one-hot row); set alpha=0 to distill from the teacher alone"
        )


def sparse_labels(y, logits):
    """Integer class ids from sparse or one-hot ``y``; the teacher's top-1 where there are no labels."""
    if y is None:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    teacher_top1 = tf.argmax(logits, axis=-1, output_type=tf.int32)
    labeled = labeled_mask(y, logits) > 0
    if is_one_hot(y, logits):
        return tf.where(labeled, tf.argmax(y, axis=-1, output_type=tf.int32), teacher_top1)
    return tf.where(labeled, tf.reshape(tf.cast(y, tf.int32), [-1]), teacher_top1)
