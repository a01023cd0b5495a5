"""keras_kd: knowledge distillation, compression and on-device export for Keras models.

Every subpackage is an attribute of the package: ``kd.bridge``, ``kd.compress``, ``kd.data``,
``kd.export``, ``kd.losses``, ``kd.recipes``, ``kd.report``, ``kd.schemes``, ``kd.students`` and
``kd.teachers``.
``bridge``, ``compress`` (which imports tensorflow-model-optimization) and ``schemes`` load on
first attribute access (PEP 562), so ``import keras_kd`` never imports tfmot; the others are light
and load with the package, which also registers their Keras classes for
``keras.models.load_model``.

Example:
    >>> import keras_kd as kd
    >>> from keras_kd import keras
    >>> distiller = kd.Distiller(student=student, teacher=teacher, alpha=0.1)
    >>> pruned = kd.compress.prune(student, 0.8)  # first access imports keras_kd.compress
"""

import importlib

from keras_kd import (
    data,
    export,
    losses,
    nonfinite,
    recipes,
    report,
    resilience,
    students,
    teacher_stage,
    teachers,
    training_step,
)
from keras_kd._compat import keras
from keras_kd.distiller import Distiller
from keras_kd.features import FeatureTap
from keras_kd.loading import load_model

__version__ = "0.1.0"

# Subpackages imported on first attribute access rather than with the package.
_LAZY_SUBPACKAGES = ("bridge", "compress", "schemes")

__all__ = [
    "Distiller",
    "FeatureTap",
    "__version__",
    "bridge",
    "compress",
    "data",
    "export",
    "keras",
    "load_model",
    "losses",
    "nonfinite",
    "recipes",
    "report",
    "resilience",
    "schemes",
    "students",
    "teacher_stage",
    "teachers",
    "training_step",
]


def __getattr__(name):
    """Imports a lazily loaded subpackage on first access (PEP 562).

    Args:
        name: The attribute looked up on the package.

    Returns:
        The subpackage ``keras_kd.<name>``; importing it also sets it as the package's attribute,
        so later lookups do not come here.

    Raises:
        AttributeError: If ``name`` is not a subpackage of keras_kd.
    """
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    """Lists the package's attributes, the lazily loaded subpackages included."""
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
