"""A small distillation run for the kill/resume, determinism and multi-worker tests (a subprocess).

    python -m tests.resilience_job --variant=fitnet_prune --backup_dir=/tmp/b --out=/tmp/w.npz
    python -m tests.resilience_job ... --pause_at=17   # sleeps before global step 17, to be killed

Trains a pruned (or QAT) digits student against a seeded teacher with FitNet + KD, cached teacher
outputs and ``keras_kd.resilience.BackupAndRestore``; saves the student weights to ``--out`` and
prints one JSON line. ``--pause_at=N`` writes ``<out>.paused`` and sleeps at the start of global
step ``N`` (after the backups of the earlier steps are on disk), so that the test can SIGKILL it.
"""

import argparse
import json
import sys
import time

import numpy as np

import keras_kd as kd
from examples.models import make_student, make_teacher
from keras_kd import compress, resilience
from keras_kd._compat import keras, tf

VARIANTS = ("fitnet_prune", "qat", "kd")
EXAMPLES, BATCH, EPOCHS = 384, 32, 3


class _PauseAt(keras.callbacks.Callback):
    def __init__(self, step, marker):
        super().__init__()
        self.step, self.marker, self.seen = step, marker, 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.seen == self.step:
            with open(self.marker, "w", encoding="utf-8") as f:
                f.write(str(self.step))
            time.sleep(600)
        self.seen += 1


def build(variant, seed, teacher_seed=None):
    """Returns the compiled Distiller of ``variant`` (models made after seeding)."""
    (x, _), _ = kd.data.load("digits")
    keras.utils.set_random_seed(seed if teacher_seed is None else teacher_seed)
    teacher = make_teacher(x.shape[1:], 10, width=8)
    keras.utils.set_random_seed(seed + 1)
    student = make_student(x.shape[1:], 10, width=4)
    losses = [kd.losses.LogitsKD(temperature=4.0)]
    if variant == "fitnet_prune":
        student = compress.prune(student, 0.5, end_step=24, frequency=4)
        losses.append(kd.losses.FitNetHint(pairs=[("t_block2", "prune_low_magnitude_s_block2")]))
    elif variant == "qat":
        student = compress.quantize(student)
    distiller = kd.Distiller(student, teacher, losses=losses, alpha=0.1)
    distiller.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=1,
    )
    return distiller


def run(
    variant,
    out,
    backup_dir=None,
    pause_at=None,
    seed=0,
    save_freq=5,
    multi_worker=False,
    keras_backup=False,
    teacher_seed=None,
):
    """Trains and writes the final student weights to ``out`` (npz); returns a results dict."""
    resilience.enable_determinism(seed)
    (x, y), _ = kd.data.load("digits")
    x, y = x[:EXAMPLES], y[:EXAMPLES]
    strategy = (
        tf.distribute.MultiWorkerMirroredStrategy()
        if multi_worker
        else tf.distribute.get_strategy()
    )
    with strategy.scope():
        distiller = build(variant, seed, teacher_seed)
    callbacks = []
    if pause_at is not None:
        callbacks.append(_PauseAt(pause_at, out + ".paused"))
    backup = None
    if backup_dir:
        backup_class = (
            keras.callbacks.BackupAndRestore if keras_backup else resilience.BackupAndRestore
        )
        backup = backup_class(backup_dir, save_freq=save_freq)
        callbacks.append(backup)
    history = distiller.fit(
        x, y, batch_size=BATCH, epochs=EPOCHS, callbacks=callbacks, verbose=0, shuffle=True
    )
    weights = distiller.student.get_weights()
    np.savez(out, *weights)
    return {
        "epochs_run": len(history.history["loss"]),
        "skipped_batches": getattr(backup, "skipped_batches", 0),
        "teacher_cached": bool(distiller.teacher_cached),
        "finite": bool(all(np.isfinite(w).all() for w in weights)),
    }


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--backup_dir")
    parser.add_argument("--pause_at", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--multi_worker", action="store_true")
    parser.add_argument("--teacher_seed", type=int, help="Seed of the teacher's initial weights")
    parser.add_argument("--keras_backup", action="store_true", help="Keras's own callback instead")
    args = parser.parse_args(argv)
    result = run(
        args.variant,
        args.out,
        args.backup_dir,
        args.pause_at,
        args.seed,
        multi_worker=args.multi_worker,
        keras_backup=args.keras_backup,
        teacher_seed=args.teacher_seed,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
