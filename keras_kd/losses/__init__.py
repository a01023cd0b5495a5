"""Distillation losses: Keras layers with ``call(teacher, student) -> scalar``.

See ``keras_kd.losses.base`` for the contract the Distiller relies on, and ``get`` for the names
that example scripts use.
"""

from keras_kd.losses.base import DistillationLoss
from keras_kd.losses.dist import DIST
from keras_kd.losses.feature import (
    FSP,
    NST,
    AttentionTransfer,
    FitNetHint,
    attention_map,
    fsp_matrix,
)
from keras_kd.losses.logits import LogitsKD
from keras_kd.losses.logits_extra import DKD, MultiTeacherKD
from keras_kd.losses.relational import PKT, RKD, CorrelationCongruence, SimilarityPreserving

_BY_NAME = {
    "kd": LogitsKD,
    "dkd": DKD,
    "multi_kd": MultiTeacherKD,
    "dist": DIST,
    "fitnet": FitNetHint,
    "at": AttentionTransfer,
    "fsp": FSP,
    "nst": NST,
    "rkd": RKD,
    "sp": SimilarityPreserving,
    "pkt": PKT,
    "cc": CorrelationCongruence,
}


def get(name, **kwargs):
    """Makes the distillation loss registered under ``name``, like ``keras.losses.get``.

    Args:
        name: One of ``names()``, e.g. ``"kd"``.
        **kwargs: Constructor arguments of that loss, e.g. ``temperature=4.0``.

    Returns:
        A new loss layer.

    Raises:
        ValueError: If ``name`` is not a known loss.

    Example:
        >>> loss = get("kd", temperature=4.0)
    """
    if name not in _BY_NAME:
        raise ValueError(f"name must be one of {sorted(_BY_NAME)}, received: name={name!r}")
    return _BY_NAME[name](**kwargs)


def names():
    """Returns the sorted list of names that ``get`` accepts."""
    return sorted(_BY_NAME)


__all__ = [
    "DIST",
    "DKD",
    "FSP",
    "NST",
    "AttentionTransfer",
    "FitNetHint",
    "attention_map",
    "fsp_matrix",
    "PKT",
    "RKD",
    "CorrelationCongruence",
    "DistillationLoss",
    "LogitsKD",
    "MultiTeacherKD",
    "SimilarityPreserving",
    "get",
    "names",
]
