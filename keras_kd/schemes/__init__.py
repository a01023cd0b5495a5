"""Training schemes built on ``keras_kd.Distiller``: distilling beyond one teacher and one student.

Every scheme has one shape: its models come first (the teacher, when it has one, then the models
or model factories it trains), then the data, ``train`` and ``validation_data``, then keyword-only
arguments: the scheme's own (``generations``, ``max_rounds``, ``flows``, ...) and the training
options that every scheme accepts alike (checked before anything trains):

- ``train``: a ``tf.data.Dataset`` of ``(x, y)`` batches, or an ``(x, y)`` tuple of arrays;
  ``validation_data``: ``None`` or the same forms, evaluated after each epoch.
- ``epochs``: epochs of each training run (each generation, link, round or stage), default 10.
- ``batch_size``: batch size of array inputs, default 64.
- ``optimizer``: a name (``"adam"``, the default), a callable returning a new optimizer, or an
  optimizer instance used as a template; every model trained gets its own optimizer.
- ``loss``: the hard-label loss on logits, default
  ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.
- ``losses`` and ``alpha``: the distillation loss layers (each model gets its own copies) and the
  weight of the hard labels. ``None``, the default, means the measured defaults: the
  Distiller's (``keras_kd.losses.defaults``) wherever a scheme distills with a Distiller, and
  deep mutual learning's own peer term in ``mutual_learning``.
- ``callbacks`` (a list, or a callable returning a fresh list for each ``fit``) and ``verbose``
  (default 0), passed to every ``fit``.

Every scheme returns a ``SchemeResult``: ``models`` (the trained models, the final student
last), ``histories`` (one per model), ``extras`` (the scheme's own results) and ``student``.

Schemes:
    mutual_learning: Deep mutual learning (Zhang et al. 2018), with ``MutualLearner``.
    born_again: Born-again networks and their ensemble (Furlanello et al. 2018).
    teacher_assistant: Teacher-assistant chains (Mirzadeh et al. 2020).
    label_refinery: Label refinery (Bagherinezhad et al. 2018).
    fsp_two_stage: FSP-matrix pre-training, then the task (Yim et al. 2017).
    self_compress: A float model teaching its own compressed copy.

Example:
    >>> from keras_kd import schemes
    >>> result = schemes.born_again(teacher, make_student, (x_train, y_train), epochs=5)
    >>> result.student, result.histories[-1]["accuracy"][-1], result.extras["ensemble"]
"""

from keras_kd.schemes._training import OPTIONS, SchemeResult
from keras_kd.schemes.fsp import fsp_two_stage
from keras_kd.schemes.generations import (
    AverageProbabilities,
    born_again,
    ensemble,
    label_refinery,
    teacher_assistant,
)
from keras_kd.schemes.mutual import MutualLearner, mutual_learning
from keras_kd.schemes.self_compress import self_compress

__all__ = [
    "OPTIONS",
    "AverageProbabilities",
    "MutualLearner",
    "SchemeResult",
    "born_again",
    "ensemble",
    "fsp_two_stage",
    "label_refinery",
    "mutual_learning",
    "self_compress",
    "teacher_assistant",
]
