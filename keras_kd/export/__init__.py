"""Export: Keras model -> .tflite for phone and watch targets, verified; C array for firmware."""

from keras_kd.export._micro_ops import TFLM_BUILTIN_OPS
from keras_kd.export.c_array import to_c_array
from keras_kd.export.convert import (
    MAX_REPRESENTATIVE_EXAMPLES,
    TARGETS,
    WATCH_SIZE_BUDGET_BYTES,
    ExportError,
    to_tflite,
)
from keras_kd.export.verify import interpreter, verify

__all__ = [
    "MAX_REPRESENTATIVE_EXAMPLES",
    "TARGETS",
    "TFLM_BUILTIN_OPS",
    "WATCH_SIZE_BUDGET_BYTES",
    "ExportError",
    "interpreter",
    "to_c_array",
    "to_tflite",
    "verify",
]
