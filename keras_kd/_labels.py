"""Labels in a distillation batch: sparse or one-hot, with unlabeled rows (transfer-set examples).

An unlabeled row has the sparse label ``-1`` (``keras_kd.data.UNLABELED``) or an all-zero one-hot row.
"""

import numpy as np

from keras_kd._compat import keras, tf
from keras_kd._distiller_checks import loss_text


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


def hard_loss(compiled_loss, y, logits, sample_weight):
    """The compiled loss averaged over the labeled rows only (label -1, or an all-zero one-hot row,
    marks an unlabeled example); equal to the plain compiled loss when every row has a label."""
    labeled = labeled_mask(y, logits)
    if not is_one_hot(y, logits):
        y = tf.where(y >= 0, y, tf.zeros_like(y))
    weights = (
        labeled
        if sample_weight is None
        else tf.cast(tf.reshape(sample_weight, [-1]), tf.float32) * labeled
    )
    mean_over_batch = tf.cast(compiled_loss(y, logits, weights), tf.float32)
    batch = tf.cast(tf.shape(logits)[0], tf.float32)
    return mean_over_batch * batch / tf.maximum(tf.reduce_sum(labeled), 1.0)


def check_some_labels(alpha, x, y):
    """Before training: with alpha > 0, array inputs need labels and at least one labeled example."""
    if alpha == 0 or not isinstance(x, (np.ndarray, tf.Tensor, dict, list, tuple)):
        return  # datasets and generators carry their own labels; the first step checks them
    if y is None:
        raise ValueError(
            f"alpha={alpha} > 0 needs labels, but fit received y=None; y must hold labels (or set "
            "alpha=0), received: y=None"
        )
    labels = np.asarray(y)
    unlabeled = _unlabeled_rows(labels)
    if labels.size and unlabeled.all():
        raise ValueError(
            f"alpha={alpha} > 0 needs labels, but every example in y is unlabeled (-1 or an all-zero "
            "one-hot row); y must hold at least one label, or set alpha=0 to distill from the "
            f"teacher alone, received: y=<array of {len(labels)} unlabeled examples>"
        )


def _unlabeled_rows(labels):
    """A boolean per row of a numpy label array: sparse -1, or an all-zero one-hot row."""
    if labels.ndim > 1 and labels.shape[-1] > 1:
        return labels.sum(axis=-1) == 0
    return labels.reshape(len(labels), -1)[:, 0] < 0


def labeled_count(y):
    """The number of labeled rows of array labels ``y``; ``None`` for ``None`` or a non-array."""
    if not isinstance(y, (np.ndarray, tf.Tensor)):
        return None
    labels = np.asarray(y)
    if labels.ndim == 0:
        return None
    return int(len(labels) - _unlabeled_rows(labels).sum()) if len(labels) else 0


def sparse_labels(y, logits):
    """Integer class ids from sparse or one-hot ``y``; the teacher's top-1 where there are no labels."""
    if y is None:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    teacher_top1 = tf.argmax(logits, axis=-1, output_type=tf.int32)
    labeled = labeled_mask(y, logits) > 0
    if is_one_hot(y, logits):
        return tf.where(labeled, tf.argmax(y, axis=-1, output_type=tf.int32), teacher_top1)
    return tf.where(labeled, tf.reshape(tf.cast(y, tf.int32), [-1]), teacher_top1)


def _loss_kind(loss):
    """'sparse', 'categorical' or None (unknown) for the compiled hard-label loss."""
    names = {
        "sparse": ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"),
        "categorical": ("categorical_crossentropy", "CategoricalCrossentropy"),
    }
    if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
        return "sparse"
    if isinstance(loss, keras.losses.CategoricalCrossentropy):
        return "categorical"
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None)
    for kind, known in names.items():
        if name in known:
            return kind
    return None


def _shape(value):
    return tuple(value.shape) if hasattr(value, "shape") else None


def check_fit_data(x, y, student, loss, alpha):
    """The data checks of ``Distiller.fit``: ``check_data``, then ``check_some_labels``.

    Args:
        x: The training inputs as the student sees them (after a shape-changing augmentation).
        y: The labels given to ``fit``, or ``None``.
        student: The student model.
        loss: The compiled hard loss, or ``None``.
        alpha: The weight of the hard loss.

    Raises:
        ValueError: Naming the first argument that does not fit.
    """
    check_data(x, y, student, loss)
    check_some_labels(alpha, x, y)


def check_data(x, y, student, loss):
    """Before training: ``x`` and ``y`` are non-empty, fit the student's input and output classes.

    Arrays are checked fully (shapes, lengths, class ids); a ``tf.data.Dataset`` by its cardinality
    and element shapes. Other inputs (generators, dicts) are left to the first step.
    """
    if isinstance(x, tf.data.Dataset):
        if int(x.cardinality()) == 0:
            raise ValueError(
                "x must hold at least one batch, received: x=<tf.data.Dataset of cardinality 0>"
            )
        spec = x.element_spec
        if isinstance(spec, tuple) and len(spec) >= 2:
            x_spec, y_spec = spec[0], spec[1]
        else:
            x_spec, y_spec = spec, None
        if isinstance(x_spec, tf.TensorSpec):
            _check_input_shape(
                tuple(x_spec.shape), student, "x", "x=<dataset of batches of shape {}>"
            )
        if isinstance(y_spec, tf.TensorSpec):
            _check_label_shape(
                tuple(y_spec.shape), None, student, loss, "x=<dataset of labels of shape {}>"
            )
        return
    if not isinstance(x, (np.ndarray, tf.Tensor)):
        return
    if len(x) == 0:
        raise ValueError(
            f"x must hold at least one example, received: x=<array of shape {_shape(x)}>"
        )
    _check_input_shape(_shape(x), student, "x", "x=<array of shape {}>")
    if y is None or not isinstance(y, (np.ndarray, tf.Tensor, list)):
        return
    labels = np.asarray(y)
    if labels.ndim == 0 or len(labels) != len(x):
        raise ValueError(
            f"y must hold one label per example of x ({len(x)}), received: "
            f"y=<array of shape {labels.shape}>"
        )
    _check_label_shape(labels.shape, labels, student, loss, "y=<array of shape {}>")


def _check_input_shape(shape, student, arg, what):
    inputs = getattr(student, "inputs", None) or []
    if len(inputs) != 1 or shape is None:
        return
    expected = tuple(inputs[0].shape)
    matches = len(shape) == len(expected) and all(
        e is None or s is None or e == s for s, e in zip(shape[1:], expected[1:])
    )
    if not matches:
        raise ValueError(
            f"{arg} must match the student's input shape {expected}, received: {what.format(shape)}"
        )


def _check_label_shape(shape, labels, student, loss, what):
    outputs = getattr(student, "outputs", None) or []
    classes = outputs[0].shape[-1] if len(outputs) == 1 and outputs[0].shape.rank else None
    one_hot = len(shape) >= 2 and shape[-1] is not None and shape[-1] > 1
    kind = _loss_kind(loss)
    if one_hot and kind == "sparse":
        raise ValueError(
            f"y must be class ids of shape (n,) or (n, 1) for loss={loss_text(loss)} (one-hot "
            "labels need keras.losses.CategoricalCrossentropy(from_logits=True)), received: "
            f"{what.format(shape)}"
        )
    if not one_hot and kind == "categorical":
        raise ValueError(
            f"y must be one-hot rows of width {classes} for loss={loss_text(loss)} (class ids "
            "need keras.losses.SparseCategoricalCrossentropy(from_logits=True)), received: "
            f"{what.format(shape)}"
        )
    if classes is None:
        return
    if one_hot and shape[-1] != classes:
        raise ValueError(
            f"y must be one-hot rows of width {classes} (the student's classes), received: "
            f"{what.format(shape)}"
        )
    if not one_hot and labels is not None and labels.size:
        ids = labels.reshape(-1)
        if np.issubdtype(ids.dtype, np.floating) and not np.all(np.floor(ids) == ids):
            raise ValueError(
                f"y must hold integer class ids in [0, {classes}) or -1, received: "
                f"y=<array with values {ids[np.floor(ids) != ids][:3].tolist()}>"
            )
        bad = ids[(ids >= classes) | (ids < -1)]
        if bad.size:
            raise ValueError(
                f"y must hold class ids in [0, {classes}) (the student's classes) or -1 for an "
                "unlabeled example, received: "
                f"y=<array with values {sorted(set(bad.tolist()))[:5]}>"
            )
