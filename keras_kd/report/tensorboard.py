"""TensorBoard logging that works with or without the ``tensorboard`` package installed.

``keras.callbacks.TensorBoard`` and tfmot's ``PruningSummaries`` call ``tf.summary.scalar``, which
TensorFlow 2.21 implements only when the ``tensorboard`` package is installed (it raises
``TBNotInstalledError`` otherwise, and TensorFlow no longer depends on it). Scalars can still be
written with TensorFlow's own ``tf.summary.write`` and the scalar plugin's metadata: the event
files are the same ones TensorBoard reads.
"""

from keras_kd._compat import keras, tf


def tensorboard_installed():
    """True when the ``tensorboard`` package can be imported (``tf.summary.scalar`` works).

    Returns:
        Whether ``import tensorboard`` succeeds.

    Example:
        >>> tensorboard_installed()
        False
    """
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _scalar_metadata():
    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    data_class = metadata.DESCRIPTOR.fields_by_name["data_class"].enum_type
    metadata.data_class = data_class.values_by_name["DATA_CLASS_SCALAR"].number
    return metadata


def write_scalars(log_dir, scalars, step=0):
    """Writes ``{tag: number}`` as TensorBoard scalars at ``step`` into ``log_dir``.

    Uses ``tf.summary.write`` with the scalar plugin's metadata, so it needs no ``tensorboard``
    package.

    Args:
        log_dir: The event-file directory (created if missing).
        scalars: ``{tag: number}``; values that are not numbers are skipped.
        step: The step to record.

    Returns:
        The tags written.

    Example:
        >>> write_scalars("logs/final", {"kd/accuracy": 0.97})
        ['kd/accuracy']
    """
    writer = tf.summary.create_file_writer(str(log_dir))
    written = []
    with writer.as_default():
        for tag, value in scalars.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    continue
            tf.summary.write(tag, tf.constant(float(value)), step=step, metadata=_scalar_metadata())
            written.append(tag)
    writer.flush()
    writer.close()
    return written


@keras.utils.register_keras_serializable(package="keras_kd")
class ScalarLogger(keras.callbacks.Callback):
    """Logs every value of ``logs`` at each epoch's end, and the sparsity of pruned layers.

    The fallback for ``keras.callbacks.TensorBoard`` when the ``tensorboard`` package is missing:
    a ``Distiller``'s logs hold the total ``loss``, ``hard_loss``, each distillation loss term
    and the metrics, so every loss term becomes a scalar ``epoch_<name>``. When the trained
    model (or a Distiller's student) holds pruning wrappers, ``sparsity/<layer>`` scalars take
    the place of tfmot's ``PruningSummaries`` (Zhu & Gupta 2017, "To prune, or not to prune").

    Args:
        log_dir: The event-file directory.

    Raises:
        ValueError: If ``log_dir`` is empty.

    Example:
        >>> distiller.fit(x, y, epochs=5, callbacks=[ScalarLogger("logs/kd")])
    """

    def __init__(self, log_dir):
        super().__init__()
        if not log_dir:
            raise ValueError(f"log_dir must be a directory path, received: log_dir={log_dir!r}")
        self.log_dir = str(log_dir)

    def on_epoch_end(self, epoch, logs=None):
        scalars = {f"epoch_{key}": value for key, value in (logs or {}).items()}
        model = getattr(self.model, "student", self.model)
        for layer in model.submodules:
            # The masks, as PruningSummaries reads them: UpdatePruningStep copies them into the
            # kernels only at its own epoch end, which may come after this callback's.
            for _, mask, _ in getattr(layer, "pruning_vars", ()):
                name = layer.layer.name if hasattr(layer, "layer") else layer.name
                scalars[f"sparsity/{name}"] = 1.0 - float(tf.reduce_mean(mask))
        write_scalars(self.log_dir, scalars, step=epoch)

    def get_config(self):
        return {"log_dir": self.log_dir}


def tensorboard_callback(log_dir):
    """The TensorBoard callback for ``log_dir``: Keras's own when ``tensorboard`` is installed
    (a ``Distiller`` then adds ``PruningSummaries`` into the same directory), else
    ``ScalarLogger``.

    Args:
        log_dir: The event-file directory.

    Returns:
        A ``keras.callbacks.Callback``.

    Example:
        >>> distiller.fit(x, y, callbacks=[tensorboard_callback("logs/kd")])
    """
    if tensorboard_installed():
        return keras.callbacks.TensorBoard(log_dir=str(log_dir))
    return ScalarLogger(log_dir)
