"""Compression of the student: pruning, lottery tickets, unit pruning, QAT (8-bit and low-bit
weights), clustering, slimming.

Every function takes a plain (Sequential or functional) Keras model and returns a new one; nothing
here knows about distillation. A returned model that needs callbacks to train (a pruned one needs
tfmot's ``UpdatePruningStep``) carries them (``training_callbacks``, ``keras_kd.model_callbacks``):
its own ``fit`` and ``keras_kd.Distiller.fit`` add them. Train the result with a Distiller or plain
Keras, then ``strip`` it for export. ``apply_recipe`` chains several methods (``"prune+qat"``),
fine-tuning after each.

Example:
    >>> from keras_kd import compress
    >>> pruned = compress.prune(student, 0.8, schedule="constant")
    >>> distiller = keras_kd.Distiller(student=pruned, teacher=teacher)
    >>> distiller.compile("adam", loss, metrics=["accuracy"])
    >>> distiller.fit(x, y, epochs=5)
    >>> small = compress.strip(distiller.student)
"""

from keras_kd.compress.callbacks import training_callbacks
from keras_kd.compress.clustering import CENTROID_INITS, cluster, distinct_values
from keras_kd.compress.lottery import lottery_ticket, prune_iteratively
from keras_kd.compress.low_bit import (
    BinaryWeightQuantizer,
    LowBitQuantizeConfig,
    TernaryWeightQuantizer,
)
from keras_kd.compress.packing import pack_weights, packed_size
from keras_kd.compress.pruning import prune, sparsity
from keras_kd.compress.quantization import quantize
from keras_kd.compress.recipes import (
    RECIPE_STEPS,
    apply_recipe,
    calibrate_ranges,
    float_params,
    parse_recipe,
)
from keras_kd.compress.slimming import depthwise_separable, low_rank
from keras_kd.compress.stripping import is_quantized, strip
from keras_kd.compress.units import prune_units

__all__ = [
    "CENTROID_INITS",
    "BinaryWeightQuantizer",
    "LowBitQuantizeConfig",
    "RECIPE_STEPS",
    "TernaryWeightQuantizer",
    "apply_recipe",
    "calibrate_ranges",
    "cluster",
    "depthwise_separable",
    "distinct_values",
    "float_params",
    "is_quantized",
    "lottery_ticket",
    "low_rank",
    "pack_weights",
    "packed_size",
    "parse_recipe",
    "prune",
    "prune_iteratively",
    "prune_units",
    "quantize",
    "sparsity",
    "strip",
    "training_callbacks",
]
