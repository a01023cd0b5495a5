"""What the Distiller accepts as a teacher, and how a teacher is saved in a Distiller's config."""

import os

from keras_kd._checks import is_graph_model
from keras_kd._compat import keras
from keras_kd._keras3 import is_keras3_model
from keras_kd.teachers.files import SavedModelTeacher, TFLiteTeacher
from keras_kd.teachers.foreign import CallableTeacher, ForeignTeacher, Keras3Teacher

_KERAS_FILES = (".keras", ".h5", ".hdf5")
_SAVED = {"keras_kd>TFLiteTeacher": TFLiteTeacher, "keras_kd>SavedModelTeacher": SavedModelTeacher}
KINDS = (
    "a keras.Model (tf_keras or Keras 3), a SavedModel directory, a .tflite file, a .keras or .h5 "
    "file, or a callable from a numpy batch to numpy logits"
)


def as_teacher(teacher, role="teacher", student=None):
    """Returns ``teacher`` as something the Distiller can run: a tf_keras model or a ForeignTeacher.

    Args:
        teacher: A tf_keras model (returned as it is), a Keras 3 model, a path to a ``.tflite``
            file, a SavedModel directory or a ``.keras``/``.h5`` file (loaded safely with
            ``keras_kd.load_model``), a loaded SavedModel, a ``ForeignTeacher``, or a callable from a
            numpy batch to numpy logits.
        role: ``"teacher"`` or ``"teacher[i]"``, used in messages.
        student: The student; a callable teacher of unknown output shape is called once on two
            zero inputs of the student's input shape to find it.

    Returns:
        A tf_keras model or a ``ForeignTeacher``. ``None`` and Keras layers are returned unchanged,
        for the model checks to refuse with their own messages.

    Raises:
        ValueError: If a path names a ``.tflite``, ``.keras`` or ``.h5`` file that does not exist,
            or an existing file or directory of none of the kinds.
        TypeError: If ``teacher`` is none of the kinds above (a string that is no existing path
            and has none of the file suffixes included).

    Example:
        >>> teacher = as_teacher("teacher.tflite")  # a TFLiteTeacher
    """
    if teacher is None or isinstance(teacher, (keras.layers.Layer, ForeignTeacher)):
        result = teacher
    elif is_keras3_model(teacher):
        result = Keras3Teacher(teacher)
    elif isinstance(teacher, (str, os.PathLike)):
        result = _from_path(os.fspath(teacher), role)
    elif "serving_default" in (getattr(teacher, "signatures", None) or {}):
        result = SavedModelTeacher(teacher)
    elif callable(teacher):
        result = CallableTeacher(teacher)
    else:
        raise TypeError(f"{role} must be {KINDS}, received: {role}={teacher!r}")
    if isinstance(result, CallableTeacher) and is_graph_model(student):
        if len(student.inputs) == 1:
            result.probe(tuple(student.inputs[0].shape[1:]))
    return result


def _from_path(path, role):
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        return SavedModelTeacher(path)
    if os.path.isfile(path) and path.endswith(".tflite"):
        return TFLiteTeacher(path)
    if os.path.isfile(path) and path.endswith(_KERAS_FILES):
        from keras_kd.loading import load_model

        return load_model(path)
    if not os.path.exists(path) and not path.endswith((".tflite", *_KERAS_FILES)):
        raise TypeError(f"{role} must be {KINDS}, received: {role}={path!r}")
    problem = "does not exist" if not os.path.exists(path) else "is of none of these kinds"
    raise ValueError(
        f"{role} given as a path must be a .tflite file, a SavedModel directory, or a .keras or "
        f".h5 file, received: {role}={path!r}, which {problem}"
    )


def serialize(teacher):
    """Returns a teacher (or a list of teachers) as config, for ``Distiller.get_config``.

    Args:
        teacher: A tf_keras model, a ``ForeignTeacher``, or a list of them.

    Returns:
        Keras's serialization of a tf_keras model; ``{"class_name": "keras_kd>TFLiteTeacher",
        "config": {"path": ...}}`` (or ``SavedModelTeacher``) for a file teacher; a list for a list.

    Raises:
        ValueError: For a Keras 3 or callable teacher, which live only in memory.

    Example:
        >>> serialize(TFLiteTeacher("teacher.tflite"))["config"]
        {'path': 'teacher.tflite'}
    """
    if isinstance(teacher, (list, tuple)):
        return [serialize(t) for t in teacher]
    if isinstance(teacher, ForeignTeacher):
        return {"class_name": f"keras_kd>{type(teacher).__name__}", "config": teacher.get_config()}
    return keras.saving.serialize_keras_object(teacher)


def deserialize(config, custom_objects=None):
    """Rebuilds the teacher (or list of teachers) that ``serialize`` described.

    Args:
        config: What ``serialize`` returned.
        custom_objects: Passed to Keras's deserialization of tf_keras models.

    Returns:
        The tf_keras model, ``ForeignTeacher`` or list of them.

    Example:
        >>> teacher = deserialize(serialize(TFLiteTeacher("teacher.tflite")))
    """
    if isinstance(config, list):
        return [deserialize(c, custom_objects) for c in config]
    if isinstance(config, dict) and config.get("class_name") in _SAVED:
        return _SAVED[config["class_name"]](**config["config"])
    return keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
