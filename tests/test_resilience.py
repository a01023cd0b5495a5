"""Tests of keras_kd.resilience: SIGKILL and resume, determinism, the non-finite guard."""

import contextlib
import json
import os
import signal
import time

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot  # conftest imported keras_kd._compat first

import keras_kd as kd
from keras_kd import compress, keras, resilience
from keras_kd._compat import tf
from tests import forked_script_runs

# Seconds for all of the ``runs`` fixture's 9 processes (children forked from one process that
# imported TensorFlow: each mostly traces; its 36 training steps take 0.1 s). Only a hung process
# comes near the limit.
TIMEOUT = 900
TAPPED = "quant_s_block2"


def _job(out, *flags):
    """Starts ``python -m tests.resilience_job`` as a forked child; returns its pid."""
    return forked_script_runs.start("tests.resilience_job", [f"--out={out}", *flags])


def _left(deadline):
    """Seconds until ``deadline`` (``time.monotonic()``), at least 1."""
    return max(1.0, deadline - time.monotonic())


def _result(pid, deadline):
    done = forked_script_runs.wait(pid, _left(deadline))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _weights(path):
    with np.load(path) as stored:
        return [stored[k] for k in stored.files]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs every process once, concurrently: references, a second run, killed and resumed runs.

    The killed runs pause at the start of global step 17 (12 steps per epoch, a backup every 5
    steps: the last one after step 15 of 36, in epoch 1), are SIGKILLed there, and are run again
    with the same backup directory. The resumed fitnet_prune run gets a teacher initialized from
    another seed: the backup must replace it before the teacher cache is built. keras_backup is
    the fitnet_prune run with Keras's own BackupAndRestore instead, killed and resumed the same way.
    """
    root = tmp_path_factory.mktemp("resilience")
    deadline = time.monotonic() + TIMEOUT
    processes, killed = {}, {}
    # name -> (variant, extra flags of every run); keras_backup: Keras's own callback, for contrast.
    killable = {
        "fitnet_prune": ("fitnet_prune", []),
        "qat": ("qat", []),
        "keras_backup": ("fitnet_prune", ["--keras_backup"]),
    }
    try:
        for variant in ("fitnet_prune", "qat"):
            base = f"--variant={variant}"
            processes[f"{variant}/reference"] = _job(
                root / f"{variant}_reference.npz", base, f"--backup_dir={root / variant}_ref"
            )
        for name, (variant, extra) in killable.items():
            killed[name] = _job(
                root / f"{name}_resumed.npz",
                f"--variant={variant}",
                f"--backup_dir={root / name}_kill",
                "--pause_at=17",
                *extra,
            )
        processes["fitnet_prune/again"] = _job(
            root / "fitnet_prune_again.npz", "--variant=fitnet_prune"
        )
        for name, pid in killed.items():
            marker = root / f"{name}_resumed.npz.paused"
            while not marker.exists():
                if forked_script_runs.poll(pid) is not None:
                    pytest.fail(f"{name} ended before its pause: {_result(pid, deadline)}")
                assert time.monotonic() < deadline, f"{name} never reached its pause"
                time.sleep(0.2)
            os.kill(pid, signal.SIGKILL)
            assert forked_script_runs.wait(pid, _left(deadline)).returncode == -9
            assert os.listdir(root / f"{name}_kill" / "chief")
            variant, extra = killable[name]
            if name == "fitnet_prune":
                extra = [*extra, "--teacher_seed=7"]
            processes[f"{name}/resumed"] = _job(
                root / f"{name}_resumed.npz",
                f"--variant={variant}",
                f"--backup_dir={root / name}_kill",
                *extra,
            )
        results = {name: _result(pid, deadline) for name, pid in processes.items()}
    except BaseException:
        for pid in [*processes.values(), *killed.values()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise
    weights = {name: _weights(root / (name.replace("/", "_") + ".npz")) for name in results}
    return results, weights


@pytest.mark.parametrize("variant", ["fitnet_prune", "qat"])
def test_run_killed_mid_epoch_resumes_to_identical_weights(runs, variant):
    results, weights = runs
    resumed, reference = results[f"{variant}/resumed"], results[f"{variant}/reference"]
    # Epoch 1 batch 3: the 12 batches of epoch 0 and 3 of epoch 1 are replayed, not retrained.
    assert resumed["skipped_batches"] == 15
    assert resumed["epochs_run"] == 2 and reference["epochs_run"] == 3
    assert resumed["teacher_cached"] and resumed["finite"]
    pairs = list(zip(weights[f"{variant}/resumed"], weights[f"{variant}/reference"]))
    assert len(pairs) == len(weights[f"{variant}/reference"])
    assert all(np.array_equal(a, b) for a, b in pairs)


def test_keras_backup_and_restore_resumes_to_other_weights_than_an_uninterrupted_run(runs):
    """Keras's own callback, killed at the same step, resumes but not to the same weights.

    It resumes at the step it reached but feeds it the epoch's first batches, and later epochs get
    another shuffle order; README quotes the gap measured here (max |dw| 0.014 where it was written).
    """
    results, weights = runs
    assert results["keras_backup/resumed"]["finite"]
    resumed, uninterrupted = weights["keras_backup/resumed"], weights["fitnet_prune/again"]
    assert len(resumed) == len(uninterrupted)
    gap = max(float(np.abs(a - b).max()) for a, b in zip(resumed, uninterrupted))
    assert 1e-3 < gap < 0.1, gap


def test_two_processes_train_bit_identical_weights(runs):
    _, weights = runs
    first, second = weights["fitnet_prune/reference"], weights["fitnet_prune/again"]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert any(np.any(w == 0) for w in first)  # the pruned kernels are sparse


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_enable_determinism_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        resilience.enable_determinism(seed)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backup_dir": ""}, "backup_dir must be a non-empty path"),
        ({"backup_dir": "b", "save_freq": 0}, "save_freq must be"),
        ({"backup_dir": "b", "save_freq": "batch"}, "save_freq must be"),
        ({"backup_dir": "b", "delete_checkpoint": "yes"}, "delete_checkpoint must be"),
    ],
)
def test_backup_and_restore_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resilience.BackupAndRestore(**kwargs)


def test_backup_and_restore_config_round_trip(tmp_path):
    backup = resilience.BackupAndRestore(str(tmp_path), save_freq=3, delete_checkpoint=False)
    again = resilience.BackupAndRestore(**backup.get_config())
    assert again.get_config() == backup.get_config()


@pytest.mark.parametrize("source", ["arrays", "dataset"])
def test_resume_from_backup_alone_restores_at_once_and_orders_backups_last(tmp_path, source):
    """The resumption stage before a plain keras.Model.fit, without a Distiller."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    first = resilience.BackupAndRestore(str(tmp_path), save_freq=1, delete_checkpoint=False)
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[first])
    backed_up = model.get_weights()
    model.set_weights([np.zeros_like(w) for w in backed_up])
    logger, backup = keras.callbacks.History(), resilience.BackupAndRestore(str(tmp_path))
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16) if source == "dataset" else x
    ordered = resilience.resume_from_backup(model, data, [backup, logger], initial_epoch=1)
    assert ordered == [logger, backup]
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), backed_up))
    assert backup.replays_epochs == (source == "arrays") and backup.initial_epoch == 1
    assert resilience.resume_from_backup(model, data, [logger]) == [logger]


class _NaNAt(kd.losses.LogitLoss):
    """A loss that returns NaN at the ``bad``-th call (0-based) and is finite otherwise."""

    def __init__(self, bad, **kwargs):
        super().__init__(**kwargs)
        self.bad = bad
        self.calls = tf.Variable(0, trainable=False)

    def call(self, teacher, student):
        value = tf.reduce_mean(tf.square(teacher - student))
        bad = tf.equal(self.calls, self.bad)
        self.calls.assign_add(1)
        return tf.where(bad, tf.constant(np.nan), value)


def _distiller(teacher, student, bad, steps_per_execution, tapped="s_block2"):
    keras.utils.set_random_seed(0)  # the same adapter initialization in every Distiller
    losses = [kd.losses.FitNetHint(pairs=[("t_block2", tapped)])]
    if bad is not None:
        losses.append(_NaNAt(bad, name="exploding"))
    distiller = kd.Distiller(student, teacher, losses=losses, cache_teacher=False)
    distiller.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return distiller


def _state(distiller):
    """Student, adapter and optimizer values (not the metrics)."""
    variables = [*distiller.student.weights, *distiller.distillation_losses[0].weights]
    return [v.numpy() for v in variables + list(distiller.optimizer.variables())]


@pytest.mark.parametrize("source, steps_per_execution", [("loss_term", 1), ("input", 4)])
def test_nonfinite_step_applies_nothing_to_student_adapters_or_optimizer(
    digits, teacher, student, source, steps_per_execution
):
    """A NaN loss term, or NaN inputs, at batch 5."""
    (x, y), _ = digits
    x, y, bad = x[:128].copy(), y[:128], 5
    if source == "input":
        x[bad * 16 : (bad + 1) * 16] = np.nan
    student = compress.quantize(student)  # QAT ranges: state the forward pass updates
    initial = student.get_weights()
    never = 10**6
    distiller = _distiller(
        teacher, student, bad if source == "loss_term" else never, steps_per_execution, TAPPED
    )
    # NaN inputs: relu(NaN) is 0 on some CPUs (the loss stays finite, the gradient does not) and
    # NaN on others (AVX2-only AMD EPYC: the hard loss itself is NaN). Either stops the step.
    name = "exploding" if source == "loss_term" else "(gradient of |hard_loss)"
    with pytest.raises(FloatingPointError, match=f"'{name}"):
        distiller.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)

    with tfmot.quantization.keras.quantize_scope():
        reference_student = keras.models.clone_model(student)
    reference_student.set_weights(initial)
    reference = _distiller(teacher, reference_student, never, 1, TAPPED)
    reference.fit(x[: bad * 16], y[: bad * 16], batch_size=16, epochs=1, shuffle=False, verbose=0)
    after, expected = _state(distiller), _state(reference)
    assert len(after) == len(expected)
    assert all(np.isfinite(a).all() for a in after)
    names = [
        v.name for v in [*distiller.student.weights, *distiller.distillation_losses[0].weights]
    ]
    names += [v.name for v in distiller.optimizer.variables()]
    differ = [
        (n, np.abs(a - b).max())
        for n, a, b in zip(names, after, expected)
        if not np.array_equal(a, b)
    ]
    assert not differ


def test_nonfinite_failure_leaves_earlier_checkpoints_and_exports_intact(
    digits, teacher, student, tmp_path
):
    (x, y), _ = digits
    x, y = x[:96], y[:96]
    distiller = _distiller(teacher, student, bad=7, steps_per_execution=1)  # epoch 2, batch 1
    exported = kd.export.to_tflite(student, str(tmp_path / "before.tflite"))
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "epoch{epoch}.weights.h5"), save_weights_only=True, save_best_only=False
    )
    backup = resilience.BackupAndRestore(str(tmp_path / "backup"), save_freq="epoch")
    snapshot = {}

    class _Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshot.update(_read_files(tmp_path))

    with pytest.raises(FloatingPointError, match="'exploding'"):
        distiller.fit(
            x,
            y,
            batch_size=32,
            epochs=4,
            shuffle=False,
            verbose=0,
            callbacks=[checkpoint, backup, _Snapshot()],
        )
    files = _read_files(tmp_path)
    assert "epoch2.weights.h5" in files and "epoch3.weights.h5" not in files
    assert exported.endswith("before.tflite") and "before.tflite" in files
    assert any(name.startswith("backup/chief/ckpt-") for name in files)
    assert not [name for name in files if "temp" in name or "tmp" in name or "partial" in name], (
        sorted(files)
    )
    # _Snapshot ran before the backup of epoch 2 (backups run last), so compare that one apart.
    assert {k: v for k, v in files.items() if "backup" not in k} == {
        k: v for k, v in snapshot.items() if "backup" not in k
    }
    restored = _distiller(teacher, keras.models.clone_model(student), 7, 1)
    restored.load_weights(str(tmp_path / "epoch2.weights.h5"))
    assert all(np.isfinite(w).all() for w in restored.student.get_weights())
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_path=exported).allocate_tensors()
    resumed = _distiller(teacher, keras.models.clone_model(student), 7, 1)
    checkpoint_state = tf.train.Checkpoint(model=resumed)
    latest = tf.train.latest_checkpoint(str(tmp_path / "backup" / "chief"))
    checkpoint_state.restore(latest).expect_partial()
    assert all(
        np.array_equal(a, b)
        for a, b in zip(resumed.student.get_weights(), restored.student.get_weights())
    )


def _read_files(root):
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


@pytest.mark.parametrize("extension", [".keras", ".h5"])
def test_a_failed_save_keeps_the_previous_model_and_leaves_no_temp_file(tmp_path, extension):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = str(tmp_path / f"student{extension}")
    resilience.save_model_atomically(model, path)
    before = open(path, "rb").read()

    def broken_save(target, **kwargs):
        with open(target, "wb") as f:
            f.write(b"half a model")
        raise OSError("disk full")

    model.save = broken_save
    with pytest.raises(OSError, match="disk full"):
        resilience.save_model_atomically(model, path)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == [f"student{extension}"]
    assert keras.models.load_model(path).count_params() == 8
