"""Distillation losses: Keras layers that map teacher and student outputs to a scalar.

Every loss subclasses ``LogitLoss`` (on logits) or ``FeatureLoss`` (on tapped layers); see
``keras_kd.losses.base`` for the contract the Distiller relies on, and ``get`` for the names that
example scripts use.
"""

from keras_kd import _checks
from keras_kd.losses._feature_base import FeatureLoss
from keras_kd.losses.base import DistillationLoss, LogitLoss
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
    _checks.check_choice("name", name, sorted(_BY_NAME))
    return _BY_NAME[name](**kwargs)


def names():
    """Returns the sorted list of names that ``get`` accepts."""
    return sorted(_BY_NAME)


def defaults(num_teachers=1):
    """The Distiller's default losses and hard-label weight ``alpha``, for one or several teachers.

    One teacher: ``[DIST(beta=2.0, gamma=2.0, temperature=4.0)]`` with ``alpha=0.5`` (Huang et
    al. 2022, their CIFAR setting), chosen by the fixed suite of ``examples/benchmark_regimes.py``
    (README "Does distillation beat the student alone?") over Hinton KD (T=4, alpha=0.1), KD at
    T=2, standardized KD, DKD and DIST at T=1. Several teachers: ``[MultiTeacherKD(temperature=4.0)]``
    with ``alpha=0.1`` (Hinton et al. 2015's ensemble targets; not yet measured by the suite).

    Paper: Huang, You, Wang, Qian & Xu (2022), "Knowledge Distillation from A Stronger Teacher".

    Args:
        num_teachers: How many teachers the Distiller has, >= 1.

    Returns:
        ``(losses, alpha)``: a list of new loss layers and a float.

    Raises:
        ValueError: If ``num_teachers`` is not an integer >= 1.

    Example:
        >>> losses, alpha = defaults()
        >>> distiller = Distiller(student, teacher, losses=losses, alpha=alpha)  # as the defaults
    """
    _checks.check_positive_int("num_teachers", num_teachers)
    if num_teachers == 1:
        return [DIST(beta=2.0, gamma=2.0, temperature=4.0)], 0.5
    return [MultiTeacherKD(temperature=4.0)], 0.1


__all__ = [
    "DIST",
    "DKD",
    "FSP",
    "NST",
    "AttentionTransfer",
    "FitNetHint",
    "attention_map",
    "defaults",
    "fsp_matrix",
    "PKT",
    "RKD",
    "CorrelationCongruence",
    "DistillationLoss",
    "FeatureLoss",
    "LogitLoss",
    "LogitsKD",
    "MultiTeacherKD",
    "SimilarityPreserving",
    "get",
    "names",
]
