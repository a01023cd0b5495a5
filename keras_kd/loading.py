"""One model loader for every saved form keras_kd meets: ``keras_kd.load_model``.

It loads a tf_keras ``.keras`` file, an ``.h5`` file or a tf_keras SavedModel directory (with tfmot's
pruning, clustering and quantization wrappers, and keras_kd's own layers), and a Keras 3 ``.keras``
or ``.h5`` file, which it converts with ``keras_kd.bridge.from_keras3``. It is safe by default: a
file holding a ``Lambda`` layer, whose Python code would run on loading, is refused unless
``unsafe=True``, and Keras's own safe mode stays on. ``atomic_path`` writes any file atomically
(a crash never leaves half a file where a reader expects a whole one); for a model,
``keras_kd.resilience.save_model_atomically``.
"""

import contextlib
import json
import os
import shutil
import zipfile

from keras_kd._checks import check_bool
from keras_kd._compat import keras
from keras_kd._keras3 import import_keras3

# Class names in a model's config that need tfmot's scopes (and keras_kd.compress) to load.
_TFMOT_CLASSES = ("PruneLowMagnitude", "ClusterWeights", "QuantizeWrapper", "QuantizeLayer")
_CODE_CLASSES = ("Lambda",)


def load_model(path, unsafe=False, compile=False, custom_objects=None):
    """Loads a saved Keras model as a tf_keras model, refusing files that would run code.

    Args:
        path: A ``.keras`` file (tf_keras or Keras 3), an ``.h5`` file (tf_keras or Keras 3), or a
            SavedModel directory written by tf_keras's ``model.save``.
        unsafe: Load files that run Python code when loaded (``Lambda`` layers) and turn Keras's
            safe mode off. Only for files you trust.
        compile: Restore the training config saved with a tf_keras model. A Keras 3 model is
            converted uncompiled.
        custom_objects: Passed to Keras's loader, for layers of your own that are not registered.

    Returns:
        A tf_keras model; a Keras 3 file comes back converted by ``keras_kd.bridge.from_keras3``,
        with its weights and layer names. A model with pruning wrappers comes back marked as
        ``keras_kd.compress.prune`` marks its models, so its ``fit`` (and the Distiller's) adds
        tfmot's ``UpdatePruningStep``.

    Raises:
        ValueError: If ``path`` is of no supported kind, or holds a ``Lambda`` layer while
            ``unsafe`` is false; if a SavedModel directory holds no Keras model (use it as a teacher
            instead: ``keras_kd.Distiller(teacher=path)``); if ``unsafe`` is not a bool.
        keras_kd.bridge.UnsupportedLayerError: If a Keras 3 model has a layer tf_keras lacks.

    Example:
        >>> import keras_kd as kd
        >>> teacher = kd.load_model("teacher.keras")  # Keras 3 or tf_keras, pruned or not
        >>> risky = kd.load_model("lambda_model.h5", unsafe=True)  # only for trusted files
    """
    check_bool("unsafe", unsafe)  # a truthy string such as "no" must not turn safety off
    path = os.fspath(path)
    keras_version, configs = _read(path)
    if not unsafe:
        _refuse_code(path, configs)
    text = "\n".join(json.dumps(c) for c in configs)
    if keras_version.startswith("3"):
        keras3 = import_keras3()
        model = keras3.saving.load_model(
            path, custom_objects=custom_objects, compile=False, safe_mode=not unsafe
        )
        from keras_kd import bridge

        return bridge.from_keras3(model)
    if "keras_kd>" in text:
        import keras_kd.schemes  # noqa: F401  (registers its Keras classes; the rest load eagerly)
    with contextlib.ExitStack() as scopes:
        if any(name in text for name in _TFMOT_CLASSES):
            for scope in _tfmot_scopes():
                scopes.enter_context(scope)
        model = keras.models.load_model(
            path, custom_objects=custom_objects, compile=compile, safe_mode=not unsafe
        )
    if "PruneLowMagnitude" in text:  # a loaded pruned model still advances its schedule in fit
        from keras_kd.compress import callbacks

        callbacks.mark(model)
    return model


def _tfmot_scopes():
    import tensorflow_model_optimization as tfmot

    import keras_kd.compress  # noqa: F401  (registers keras_kd's tfmot quantizers)

    return [
        tfmot.sparsity.keras.prune_scope(),
        tfmot.clustering.keras.cluster_scope(),
        tfmot.quantization.keras.quantize_scope(),
    ]


def _read(path):
    """Returns ``(keras_version, [config, ...])`` of the saved model at ``path``."""
    if os.path.isdir(path):
        return _read_saved_model(path)
    if not os.path.isfile(path):
        raise ValueError(
            "path must be an existing .keras or .h5 file or SavedModel directory, received: "
            f"path={path!r}, which does not exist"
        )
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise ValueError(f"path must be a Keras .keras file, received: path={path!r}")
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
            config = json.loads(archive.read("config.json"))
        return str(metadata.get("keras_version", "2")), [config]
    import h5py

    try:
        with h5py.File(path, "r") as f:
            version, config = f.attrs.get("keras_version", "2"), f.attrs.get("model_config")
    except OSError:
        raise ValueError(
            "path must be a .keras or .h5 file or a SavedModel directory, received: "
            f"path={path!r}, which is neither a zip nor an HDF5 file"
        ) from None
    if config is None:
        raise ValueError(
            f"path must be an .h5 file of a whole model, received: path={path!r}, which holds "
            "weights only (load them with model.load_weights)"
        )
    decode = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
    return decode(version), [json.loads(decode(config))]


def _read_saved_model(path):
    metadata = os.path.join(path, "keras_metadata.pb")
    if not os.path.isfile(metadata):
        problem = (
            "holds no Keras model, only TensorFlow signatures; use it as a teacher with "
            "keras_kd.Distiller(teacher=path)"
            if os.path.isfile(os.path.join(path, "saved_model.pb"))
            else "is not a SavedModel (no saved_model.pb)"
        )
        raise ValueError(
            "path must be a .keras or .h5 file or a SavedModel directory of a tf_keras model, "
            f"received: path={path!r}, which {problem}"
        )
    from tf_keras.protobuf import saved_metadata_pb2

    saved = saved_metadata_pb2.SavedMetadata()
    with open(metadata, "rb") as f:
        saved.ParseFromString(f.read())
    configs = []
    for node in saved.nodes:
        try:
            configs.append(json.loads(node.metadata))
        except ValueError:
            continue
    return "2", configs


def _code_layers(config, found):
    """Collects the names of layers in ``config`` (any nesting) whose class runs code on loading."""
    if isinstance(config, dict):
        if config.get("class_name") in _CODE_CLASSES:
            inner = config.get("config") if isinstance(config.get("config"), dict) else config
            found.append(str(inner.get("name", config.get("name", "?"))))
        for value in config.values():
            _code_layers(value, found)
    elif isinstance(config, list):
        for value in config:
            _code_layers(value, found)
    return found


def _refuse_code(path, configs):
    found = []
    for config in configs:
        _code_layers(config, found)
    names = sorted(set(found))
    if names:
        raise ValueError(
            "path must hold no layer that runs Python code when loaded, unless unsafe=True, "
            f"received: path={path!r} with Lambda layers {names}, unsafe=False. Load it with "
            "keras_kd.load_model(path, unsafe=True) (--unsafe_deserialization in the examples) "
            "only if you trust the file, or replace the Lambda layers with built-in or registered "
            "layers."
        )


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; on success it replaces ``path`` in one step.

    The temporary path keeps the extension of ``path`` (Keras and numpy choose the format by it).
    When the block raises, the temporary file (or SavedModel directory) is removed and an
    existing ``path`` is left as it was.

    Paper: none (POSIX ``rename`` is atomic within a file system).

    Args:
        path: The final file path; its directory must exist.

    Yields:
        The temporary path to write.

    Raises:
        ValueError: If the directory of ``path`` does not exist.

    Example:
        >>> with atomic_path("data.npz") as temp:
        ...     np.savez(temp, x=x)
    """
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"the directory of path must exist, received: path={path!r}")
    temp = os.path.join(directory, f".tmp{os.getpid()}-{base}")
    try:
        yield temp
        if os.path.isdir(temp) and os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(temp, path)
    finally:
        if os.path.isdir(temp):
            shutil.rmtree(temp, ignore_errors=True)
        elif os.path.exists(temp):
            os.remove(temp)
