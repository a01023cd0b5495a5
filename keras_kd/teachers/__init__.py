"""Teachers from anywhere: tf_keras and Keras 3 models, SavedModels, .tflite files and callables.

``keras_kd.Distiller(teacher=...)`` accepts any of these (or a list that mixes them) and wraps the
non-tf_keras kinds with ``as_teacher``; build a wrapper yourself to pass options (a SavedModel's
signature and output, a callable's name or output shape, LiteRT threads). Every kind works with the
logit losses and goes through the teacher-output cache; feature losses need a Keras teacher (tf_keras,
or a Keras 3 Sequential or Functional model) whose layers they tap. ``keras_kd.teachers.precision``
runs a tf_keras teacher's passes in bfloat16 where that is faster (``bfloat16_copy``, checked with
``top1_agreement`` against float32).

Example:
    >>> import keras_kd as kd
    >>> distiller = kd.Distiller(student=student, teacher="teacher.tflite")
    >>> distiller = kd.Distiller(
    ...     student=student,
    ...     teacher=[keras3_teacher, kd.teachers.CallableTeacher(torch_logits, name="torch")],
    ...     losses=[kd.losses.MultiTeacherKD()])
"""

from keras_kd.teachers.files import SavedModelTeacher, TFLiteTeacher
from keras_kd.teachers.foreign import (
    CallableTeacher,
    ForeignTeacher,
    Keras3Teacher,
    NumpyTeacher,
)
from keras_kd.teachers.precision import bfloat16_copy, top1_agreement
from keras_kd.teachers.resolve import as_teacher, deserialize, serialize

__all__ = [
    "CallableTeacher",
    "ForeignTeacher",
    "Keras3Teacher",
    "NumpyTeacher",
    "SavedModelTeacher",
    "TFLiteTeacher",
    "as_teacher",
    "bfloat16_copy",
    "deserialize",
    "serialize",
    "top1_agreement",
]
