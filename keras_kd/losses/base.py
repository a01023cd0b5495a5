"""The contract every distillation loss follows.

A distillation loss is a Keras layer whose ``call(teacher, student)`` returns a scalar float32 tensor:
the mean loss over the batch. What the Distiller passes in is decided by two attributes:

- ``pairs``: ``None`` for a loss on logits (``teacher`` and ``student`` are the two models' output
  logits), or a list of ``(teacher_layer_name, student_layer_name)`` tuples for a loss on features
  (``teacher`` and ``student`` are then lists of tensors, one per pair, in the order of ``pairs``).
- ``uses_labels``: when ``True`` the Distiller also passes ``labels=`` (integer class ids, shape
  ``(batch,)``), for losses such as DKD that split the target class from the rest.

The Distiller relies only on this contract, never on a specific loss class.
"""

import math
import numbers

from keras_kd._compat import keras, tf


class DistillationLoss(keras.layers.Layer):
    """Base class for distillation losses: a layer that maps teacher and student outputs to a scalar.

    Subclasses implement ``call(teacher, student)`` and list every constructor argument in
    ``get_config``. Custom losses may subclass this or any Keras layer with the same attributes.

    Args:
        pairs: ``None`` for a loss on logits, or a list of ``(teacher_layer, student_layer)`` name
            pairs for a loss on intermediate features.
        **kwargs: Passed to ``keras.layers.Layer`` (``name``, ``dtype``).

    Raises:
        ValueError: If ``pairs`` is empty or holds anything but pairs of layer names.

    Example:
        >>> class MeanSquaredLogits(DistillationLoss):
        ...     def call(self, teacher, student):
        ...         return tf.reduce_mean(tf.square(teacher - student))
    """

    uses_labels = False

    def __init__(self, pairs=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.pairs = _validate_pairs(pairs)

    def get_config(self):
        return {**super().get_config(), "pairs": self.pairs}


def _validate_pairs(pairs):
    if pairs is None:
        return None
    if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__iter__"):
        raise ValueError(
            "pairs must be a list of (teacher_layer_name, student_layer_name) tuples, "
            f"received: pairs={pairs!r}"
        )
    pairs = [tuple(p) if isinstance(p, (list, tuple)) else p for p in pairs]
    if not pairs:
        raise ValueError(
            "pairs must name at least one (teacher_layer, student_layer) pair, received: pairs=[]"
        )
    for pair in pairs:
        if not (
            isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(n, str) for n in pair)
        ):
            raise ValueError(
                "each entry of pairs must be a (teacher_layer_name, student_layer_name) tuple of strings, "
                f"received: pairs={pairs!r}, whose entry {pair!r} is not one"
            )
    return pairs


def validate_positive(name, value):
    """Returns ``float(value)`` or raises ``ValueError`` naming ``name`` unless it is finite and > 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number > 0, received: {name}={value!r}") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name} must be > 0, received: {name}={value!r}")
    return number


def is_finite_non_negative(value):
    """Whether ``value`` is a real number (not a bool), finite and >= 0."""
    return (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and value >= 0
    )


def validate_non_negative(name, value):
    """Returns ``float(value)`` or raises ``ValueError`` naming ``name`` unless it is finite and >= 0."""
    if not is_finite_non_negative(value):
        raise ValueError(f"{name} must be a finite number >= 0, received: {name}={value!r}")
    return float(value)


def validate_bool(name, value):
    """Returns ``value`` or raises ``ValueError`` naming ``name`` unless it is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, received: {name}={value!r}")
    return value


def as_float32(tensor):
    """Casts a (possibly float16 under mixed precision) tensor to float32 for a stable loss."""
    return tf.cast(tensor, tf.float32)
