"""keras_kd: knowledge distillation, compression and on-device export for Keras models.

Example:
    >>> import keras_kd as kd
    >>> from keras_kd import keras
    >>> distiller = kd.Distiller(student=student, teacher=teacher, alpha=0.1)
"""

from keras_kd import data, export, losses, report, resilience, students
from keras_kd._compat import keras
from keras_kd.distiller import Distiller
from keras_kd.features import FeatureTap

__version__ = "0.1.0"

__all__ = [
    "Distiller",
    "FeatureTap",
    "__version__",
    "data",
    "export",
    "keras",
    "losses",
    "report",
    "resilience",
    "students",
]
