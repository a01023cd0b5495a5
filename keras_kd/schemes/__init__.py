"""Training schemes built on ``keras_kd.Distiller``: distilling beyond one teacher and one student.

Every scheme is a function that trains its models and returns them with their histories in a small
named tuple. They share these keyword arguments (checked before anything trains):

- ``train``: a ``tf.data.Dataset`` of ``(x, y)`` batches, or an ``(x, y)`` tuple of arrays.
- ``epochs``: epochs of each training run (each generation, link, round or stage), default 10.
- ``optimizer``: a name (``"adam"``, the default), a callable returning a new optimizer, or an
  optimizer instance used as a template; every model trained gets its own optimizer.
- ``loss``: the hard-label loss on logits, default
  ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.
- ``temperature`` and ``alpha``: of the distillation (``alpha`` weighs the hard labels).
- ``batch_size`` (array inputs), ``validation_data``, ``callbacks`` (a list, or a callable
  returning a fresh list for each ``fit``) and ``verbose`` (default 0), passed to every ``fit``.

Schemes:
    mutual_learning: Deep mutual learning (Zhang et al. 2018), with ``MutualLearner``.
    born_again: Born-again networks and their ensemble (Furlanello et al. 2018).
    teacher_assistant: Teacher-assistant chains (Mirzadeh et al. 2020).
    label_refinery: Label refinery (Bagherinezhad et al. 2018).
    fsp_two_stage: FSP-matrix pre-training, then the task (Yim et al. 2017).
    self_compress: A float model teaching its own compressed copy.

Example:
    >>> from keras_kd import schemes
    >>> result = schemes.mutual_learning([student_a, student_b], (x_train, y_train), epochs=5)
    >>> result.history["model1_accuracy"][-1]
"""

from keras_kd.schemes.fsp import FSPResult, fsp_two_stage
from keras_kd.schemes.generations import (
    AverageProbabilities,
    BornAgainResult,
    ChainResult,
    RefineryResult,
    born_again,
    ensemble,
    label_refinery,
    teacher_assistant,
)
from keras_kd.schemes.mutual import MutualLearner, MutualResult, mutual_learning
from keras_kd.schemes.self_compress import SelfCompressResult, self_compress

__all__ = [
    "AverageProbabilities",
    "BornAgainResult",
    "ChainResult",
    "FSPResult",
    "MutualLearner",
    "MutualResult",
    "RefineryResult",
    "SelfCompressResult",
    "born_again",
    "ensemble",
    "fsp_two_stage",
    "label_refinery",
    "mutual_learning",
    "self_compress",
    "teacher_assistant",
]
