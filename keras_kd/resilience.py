"""Surviving crashes: bit-exact kill-and-resume, determinism, atomic saves.

``BackupAndRestore`` extends Keras's callback of that name so that a distillation run killed at any
point (SIGKILL included) and restarted with the same script ends with the same student weights as a
run that was never interrupted. What Keras's callback does, and where it falls short:

- Its ``tf.train.Checkpoint`` tracks the model, so for a ``Distiller`` it saves the student (with
  tfmot's pruning step and masks, QAT quantizer ranges, clustering centroids: all are layer
  weights), the teacher, the adapters owned by loss layers, the optimizer with its slots and
  iteration count, and the epoch and batch of the backup.
- It restores the epoch and the batch, but not the position of the input pipeline: on a mid-epoch
  restart Keras skips the steps already done while the data iterator starts again from its first
  batch, so the resumed epoch trains on the wrong batches. With ``shuffle=True`` the order of every
  later epoch also differs, since the shuffle draws its permutations anew in the new process.
- With ``steps_per_execution > 1`` it records the first batch of the last execution, not the last,
  so a restart repeats steps.

This callback fixes all three: it records the last batch done, and on a restart it advances the
data iterator past every batch already trained on (array inputs, whose one iterator spans all
epochs: the batches of the earlier epochs too, so each epoch keeps the order it had), before the
first step. ``resume_from_backup``, the resumption stage of ``keras_kd.Distiller.fit`` (usable
before any ``fit``), restores the backup before anything reads the model (the Distiller's teacher
cache then comes from the restored teacher) and makes the backup run after every other callback
(after tfmot's end-of-epoch re-masking). The guard against non-finite steps is
``keras_kd.nonfinite``.

Bit-identical resumption needs deterministic ops (``enable_determinism``) and a data order of epoch
``e`` that is a function of ``e`` alone: numpy arrays (shuffled by ``fit`` or not), or a
``tf.data.Dataset`` that does not reshuffle between epochs (no ``shuffle``, or
``shuffle(..., seed=s, reshuffle_each_iteration=False)``). A dataset that reshuffles each epoch
resumes correctly but with a different order from the restarted epoch on.
"""

import os
import time

from absl import logging

from keras_kd._checks import check_bool, check_positive_int
from keras_kd._compat import keras, tf

__all__ = [
    "BackupAndRestore",
    "enable_determinism",
    "resume_from_backup",
    "save_model_atomically",
]

_SAVE_FREQ_EPOCH = "epoch"


def enable_determinism(seed):
    """Makes training reproducible bit for bit: seeds every generator and turns on deterministic ops.

    Calls ``keras.utils.set_random_seed(seed)`` (Python, NumPy and TensorFlow generators) and
    ``tf.config.experimental.enable_op_determinism()``, after which ops that have no deterministic
    implementation raise instead of running. On CPU the same seed, data and code then give the same
    weights in every run and process. Call it once, before the models are made. Determinism serializes
    a few reductions (e.g. in ``tf.data`` and in gradient aggregation), at a speed cost measured by
    ``examples/benchmark_determinism.py``.

    Paper: none; the reproducibility practice of TensorFlow's "Determinism" guide (Riach et al. 2021,
    "Framework Determinism", NVIDIA) that ``enable_op_determinism`` implements.

    Args:
        seed: Non-negative integer seed.

    Returns:
        ``seed``.

    Raises:
        ValueError: If ``seed`` is not a non-negative integer.

    Example:
        >>> keras_kd.resilience.enable_determinism(0)
        >>> teacher, student = make_teacher(...), make_student(...)  # after seeding
    """
    seed = check_positive_int("seed", seed, minimum=0)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return seed


@keras.utils.register_keras_serializable(package="keras_kd")
class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs up the whole training state and resumes a killed run exactly where it stopped.

    A drop-in for ``keras.callbacks.BackupAndRestore`` (see the module docstring for what it adds):
    give the same ``backup_dir`` to the restarted run and ``fit`` continues from the last backup.
    Backups are ``tf.train.Checkpoint`` files written through ``tf.train.CheckpointManager``, which
    updates its index only after the new files are complete, so a kill while writing leaves the
    previous backup in force. The directory is deleted when ``fit`` ends normally (unless
    ``delete_checkpoint=False``) and kept when it raises.

    Paper: Chandy & Lamport (1985), "Distributed Snapshots: Determining Global States of Distributed
    Systems" (checkpoint and restart); the callback of Keras (Chollet et al. 2015).

    Args:
        backup_dir: Directory for the backup, used by nothing else.
        save_freq: ``"epoch"`` (back up after each epoch) or an integer >= 1: back up every
            ``save_freq`` calls of the train function (batches, or groups of
            ``steps_per_execution`` batches).
        delete_checkpoint: Delete the backup when ``fit`` completes.

    Raises:
        ValueError: If ``backup_dir`` is empty or ``save_freq`` is neither ``"epoch"`` nor an
            integer >= 1.

    Example:
        >>> keras_kd.resilience.enable_determinism(0)
        >>> backup = keras_kd.resilience.BackupAndRestore("/tmp/run1/backup", save_freq=20)
        >>> distiller.fit(x, y, epochs=10, callbacks=[backup])  # rerun the same line after a crash
    """

    def __init__(self, backup_dir, save_freq=_SAVE_FREQ_EPOCH, delete_checkpoint=True):
        if not isinstance(backup_dir, (str, os.PathLike)) or not str(backup_dir):
            raise ValueError(
                f"backup_dir must be a non-empty path, received: backup_dir={backup_dir!r}"
            )
        if save_freq != _SAVE_FREQ_EPOCH and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                f'save_freq must be "epoch" or an integer >= 1, received: save_freq={save_freq!r}'
            )
        check_bool("delete_checkpoint", delete_checkpoint)
        super().__init__(os.fspath(backup_dir), save_freq, delete_checkpoint)
        # Array inputs run one iterator through all epochs; a tf.data.Dataset gets a new one per
        # epoch. ``resume_from_backup`` sets this from the input; without it, it stays True.
        self.replays_epochs = True
        self.initial_epoch = 0
        self.skipped_batches = 0

    def get_config(self):
        return {
            "backup_dir": self.backup_dir,
            "save_freq": self.save_freq,
            "delete_checkpoint": self.delete_checkpoint,
        }

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        steps = (self.params or {}).get("steps")
        # The same computation Keras makes right after this hook to pick its first epoch and step.
        epoch, step = self._training_state.maybe_load_initial_counters_from_ckpt(
            steps, self.initial_epoch, mode="train"
        )
        self._current_epoch = epoch
        self.skipped_batches = 0
        if (epoch, step) == (self.initial_epoch, 0):
            return
        if steps is None:
            raise ValueError(
                "BackupAndRestore cannot resume mid-run on an input of unknown length; give fit "
                "steps_per_epoch, or a dataset of known cardinality"
            )
        skip = step + ((epoch - self.initial_epoch) * steps if self.replays_epochs else 0)
        logging.info(
            "keras_kd: resuming at epoch %d, batch %d; skipping %d batches already trained on",
            epoch,
            step,
            skip,
        )
        self.skipped_batches = int(skip)
        if skip:
            _skip_before_first_step(self.model, skip)

    def on_train_batch_end(self, batch, logs=None):
        # Keras passes the last batch of the execution here but recorded the first at its start.
        self._training_state._ckpt_saved_batch.assign(batch)
        super().on_train_batch_end(batch, logs)


def _skip_before_first_step(model, count):
    """Makes the next ``train_function`` call first draw ``count`` batches from the iterator."""
    original = model.train_function

    def skipping(iterator):
        start = time.perf_counter()
        for _ in range(count):
            next(iterator)
        logging.info("keras_kd: skipped %d batches in %.2f s", count, time.perf_counter() - start)
        model.train_function = original
        return original(iterator)

    model.train_function = skipping


def resume_from_backup(model, x, callbacks, initial_epoch=0):
    """The resumption stage: readies the backup callbacks for ``model.fit(x, callbacks=...)``.

    Restores the latest backup of any ``keras.callbacks.BackupAndRestore`` in ``callbacks`` into
    ``model`` now, before anything reads the model (``keras_kd.Distiller.fit`` calls it before its
    teacher stage, so a restarted run caches the restored teacher's outputs); tells keras_kd's
    ``BackupAndRestore`` whether ``x`` replays earlier epochs' batches on a restart (arrays) or
    not (a ``tf.data.Dataset``) and the epoch ``fit`` starts from; and moves the backups after
    every other callback, so that they save the state those leave at the end of an epoch. With
    no backup among ``callbacks`` it changes nothing. Use it before a plain ``keras.Model.fit``
    the same way.

    Paper: Chandy & Lamport (1985), "Distributed Snapshots: Determining Global States of
    Distributed Systems" (checkpoint and restart).

    Args:
        model: The model about to be trained.
        x: The training input about to be given to ``fit``.
        callbacks: The list of callbacks about to be given to ``fit``.
        initial_epoch: ``fit``'s ``initial_epoch``.

    Returns:
        The callbacks in the order to give ``fit``.

    Example:
        >>> backup = BackupAndRestore("runs/backup", save_freq=10)
        >>> callbacks = resume_from_backup(model, dataset, [backup, logger])  # [logger, backup]
        >>> model.fit(dataset, epochs=5, callbacks=callbacks)
    """
    backups = [c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)]
    for backup in backups:
        latest = tf.train.latest_checkpoint(os.path.join(backup.backup_dir, "chief"))
        if latest is not None:
            logging.info("keras_kd: restoring %s before training starts", latest)
            tf.train.Checkpoint(model=model).restore(latest).expect_partial()
        if isinstance(backup, BackupAndRestore):
            backup.replays_epochs = not isinstance(x, tf.data.Dataset)
            backup.initial_epoch = initial_epoch
    return [c for c in callbacks if c not in backups] + backups


def save_model_atomically(model, filepath, **kwargs):
    """Saves ``model`` so that ``filepath`` holds either the old file or the complete new one.

    ``.keras`` and ``.h5`` files are written under a temporary name in the same directory and
    renamed over ``filepath`` (``os.replace`` is atomic on POSIX), so a crash mid-save never leaves
    a truncated model where a good one was. Other paths (SavedModel directories) are saved in place.

    Args:
        model: A Keras model.
        filepath: Destination path.
        **kwargs: Passed to ``keras.Model.save``.

    Returns:
        ``filepath``.

    Example:
        >>> save_model_atomically(distiller.student, "runs/student.keras")
    """
    path = os.fspath(filepath)
    extension = os.path.splitext(path)[1]
    if extension not in (".keras", ".h5"):
        model.save(path, **kwargs)
        return filepath
    directory = os.path.dirname(os.path.abspath(path))
    temp_path = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp{extension}")
    try:
        model.save(temp_path, **kwargs)
        os.replace(temp_path, path)
    finally:
        if os.path.exists(temp_path):
            os.remove(temp_path)
    return filepath
