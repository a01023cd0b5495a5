"""Compression of the student: pruning, lottery tickets, unit pruning, QAT (8-bit and low-bit
weights), clustering, slimming.

Every function takes a plain (Sequential or functional) Keras model and returns a new one; nothing
here knows about distillation. Train the result with ``keras_kd.Distiller`` (its ``fit`` adds the
callbacks a compressed student needs), then ``strip`` it for export.

Example:
    >>> from keras_kd import compress
    >>> pruned = compress.prune(student, 0.8, schedule="constant")
    >>> distiller = keras_kd.Distiller(student=pruned, teacher=teacher)
    >>> distiller.compile("adam", loss, metrics=["accuracy"])
    >>> distiller.fit(x, y, epochs=5)
    >>> small = compress.strip(distiller.student)
"""

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
from keras_kd.compress.slimming import depthwise_separable, low_rank
from keras_kd.compress.stripping import is_quantized, strip, training_callbacks
from keras_kd.compress.units import prune_units

__all__ = [
    "CENTROID_INITS",
    "BinaryWeightQuantizer",
    "LowBitQuantizeConfig",
    "TernaryWeightQuantizer",
    "cluster",
    "depthwise_separable",
    "distinct_values",
    "is_quantized",
    "lottery_ticket",
    "low_rank",
    "pack_weights",
    "packed_size",
    "prune",
    "prune_iteratively",
    "prune_units",
    "quantize",
    "sparsity",
    "strip",
    "training_callbacks",
]
