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


# At and above this many labeled training examples per class the default DIST softens less.
MANY_EXAMPLES_PER_CLASS = 2000


def defaults(num_teachers=1, examples_per_class=None):
    """The Distiller's default losses and hard-label weight ``alpha``, for one or several teachers.

    One teacher: DIST (Huang et al. 2022) with ``alpha=0.5``, its temperature chosen by how many
    labeled training examples each class has, as measured by the fixed suite of
    ``examples/benchmark_regimes.py`` (README "Does distillation beat the student alone?"):

    - fewer than ``MANY_EXAMPLES_PER_CLASS`` (2,000), or unknown (``None``):
      ``DIST(beta=2.0, gamma=2.0, temperature=4.0)``, the paper's CIFAR setting (500 per class);
      soft targets carry most when labels are few;
    - at least 2,000: ``DIST()`` (``T=1``, ``beta=gamma=1``), the paper's ImageNet setting; with
      plenty of labels a small student loses accuracy when pulled harder toward the teacher.

    ``Distiller(student, teacher)`` counts the labeled rows of array labels at its first ``fit``
    and applies this rule (its ``default_losses_reason`` says what it chose and why); with a
    ``tf.data.Dataset`` the count is unknown and the first setting is used, so pass
    ``losses=defaults(examples_per_class=n)[0]`` to choose for a large dataset.

    Several teachers: ``[MultiTeacherKD(temperature=4.0)]`` with ``alpha=0.1`` (Hinton et al.
    2015's ensemble targets; not yet measured by the suite).

    Paper: Huang, You, Wang, Qian & Xu (2022), "Knowledge Distillation from A Stronger Teacher".

    Args:
        num_teachers: How many teachers the Distiller has, >= 1.
        examples_per_class: Labeled training examples per class (a number >= 0), or ``None``
            when unknown.

    Returns:
        ``(losses, alpha)``: a list of new loss layers and a float.

    Raises:
        ValueError: If ``num_teachers`` is not an integer >= 1, or ``examples_per_class`` is
            negative or not a number.

    Example:
        >>> losses, alpha = defaults(examples_per_class=6000)  # [DIST()], 0.5
        >>> distiller = Distiller(student, teacher, losses=losses, alpha=alpha)
    """
    _checks.check_positive_int("num_teachers", num_teachers)
    if examples_per_class is not None:
        _checks.check_number("examples_per_class", examples_per_class)
    if num_teachers > 1:
        return [MultiTeacherKD(temperature=4.0)], 0.1
    if examples_per_class is not None and examples_per_class >= MANY_EXAMPLES_PER_CLASS:
        return [DIST()], 0.5
    return [DIST(beta=2.0, gamma=2.0, temperature=4.0)], 0.5


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
