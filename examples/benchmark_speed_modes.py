"""The modes that ``examples.benchmark_speed`` measures, each run in its own process.

Each mode loads the saved teacher and initial student, trains for the given epochs and returns
seconds per epoch (median after the first), the peak resident memory, the test accuracy and, for
the modes that store teacher outputs, the one-time teacher cost; ``accuracy`` compares the live
teacher with replayed views after equal epochs over several seeds.
"""

import os
import time

import numpy as np
from absl import logging

import keras_kd as kd
from keras_kd import keras
from keras_kd._compat import tf
from keras_kd.teachers import bfloat16_copy, top1_agreement


def count_macs(model):
    """Multiply-accumulates of one forward pass through the Dense and Conv layers of ``model``."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
        elif isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)):
            total += int(np.prod(layer.kernel.shape)) * int(np.prod(layer.output.shape[1:-1]))
    return total


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch, and the peak resident memory sampled at every batch end."""

    def __init__(self, peak_mb=0.0):
        super().__init__()
        self.peak_mb = peak_mb

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_train_batch_end(self, batch, logs=None):
        self.peak_mb = max(self.peak_mb, _rss_mb())

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def load_data(dataset, train_size):
    """``kd.data.load(dataset)``, the training split cut to ``train_size`` examples (0: all)."""
    (x, y), (xt, yt) = kd.data.load(dataset)
    if train_size:
        x, y = x[:train_size], y[:train_size]
    return (x, y), (xt, yt)


def hard_loss():
    """The hard-label loss of every mode: sparse categorical cross-entropy on logits."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _teacher_passes(teacher, x):
    """Seconds of one inference pass over ``x`` in float32, bfloat16 and float32 with XLA."""
    fast = bfloat16_copy(teacher)
    xla = tf.function(lambda batch: teacher(batch, training=False), jit_compile=True)
    runs = {
        "float32": lambda data: teacher.predict(data, batch_size=256, verbose=0),
        "bfloat16": lambda data: fast.predict(data, batch_size=256, verbose=0),
        "xla": lambda data: np.concatenate(
            [xla(data[i : i + 256]) for i in range(0, len(data), 256)]
        ),
    }
    result, outputs, sample = {}, {}, x[: 256 + len(x) % 256]  # both batch shapes of the pass
    for name, run_pass in runs.items():
        run_pass(sample)  # traces and compiles
        start = time.perf_counter()
        outputs[name] = run_pass(x)
        result[f"teacher_pass_{name}_s"] = time.perf_counter() - start
    result["bfloat16_top1_agreement"] = top1_agreement(outputs["float32"], outputs["bfloat16"])
    return result


def run_mode(
    mode,
    dataset,
    train_size,
    epochs,
    batch_size,
    seed,
    work_dir,
    jit_compile=False,
    replay_views=16,
):
    """Trains one mode from the saved teacher and initial student; returns its measurements."""
    (x, y), (xt, yt) = load_data(dataset, train_size)
    student = keras.models.load_model(os.path.join(work_dir, "student.keras"))
    keras.utils.set_random_seed(seed)
    result = {"mode": mode, "data_rss_mb": _rss_mb()}
    teacher = None
    if mode not in ("student", "student_bfloat16"):
        teacher = keras.models.load_model(os.path.join(work_dir, "teacher.keras"))
    if mode == "teacher_pass":
        return {**result, **_teacher_passes(teacher, x)}
    if mode in ("student", "student_bfloat16"):
        model = student if mode == "student" else bfloat16_copy(student)
        model.compile(
            keras.optimizers.Adam(3e-3), hard_loss(), metrics=["accuracy"], jit_compile=jit_compile
        )
    elif mode in ("live_augmented", "replay"):
        views = replay_views if mode == "replay" else None
        model = kd.recipes.patient_distiller(
            student, teacher, len(x), epochs, batch_size, replay_views=views
        )
    else:
        model = kd.Distiller(student, teacher, cache_teacher=(mode == "cached"))
        model.compile(
            keras.optimizers.Adam(3e-3), hard_loss(), metrics=["accuracy"], jit_compile=jit_compile
        )
    if mode == "cached":
        start = time.perf_counter()
        model.teacher_stage.cache.annotate(x, batch_size=max(batch_size, 256))
        result["teacher_pass_s"] = time.perf_counter() - start
    timer = _EpochTimer(peak_mb=_rss_mb())
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[timer])
    if mode == "replay":
        replay = model.replay
        result.update(views=replay.views, teacher_s=replay.last_pass_seconds)
        result.update(teacher_examples=replay.teacher_examples, teacher_passes=replay.passes)
    if teacher is not None and hasattr(model, "teacher_precision_report"):
        result["teacher_precision"] = model.teacher_precision_report["precision"]
    result["epoch_s"] = float(np.median(timer.seconds[1:]))
    result["accuracy"] = float(model.evaluate(xt, yt, verbose=0)[-1])
    result["peak_rss_mb"] = timer.peak_mb
    return result


def accuracy(teacher, student, dataset, train_size, epochs, batch_size, seeds, views):
    """Test accuracy after equal epochs, live teacher vs replayed views, from the same weights.

    Args:
        teacher: The trained teacher.
        student: The student whose initial weights every run of a seed starts from (re-drawn per
            seed with ``keras.models.clone_model``).
        dataset: Dataset name for ``kd.data.load``.
        train_size: Training images (the first ones).
        epochs: Epochs of every run.
        batch_size: Batch size.
        seeds: Number of seeds (0, 1, ...).
        views: K of the replayed runs.

    Returns:
        ``{"live": [accuracy per seed], "replay": [...], "live_mean", "live_std", "replay_mean",
        "replay_std", "replay_minus_live", "views", "epochs", "train_size"}``.
    """
    (x, _), (xt, yt) = kd.data.load(dataset)
    x = x[:train_size]
    runs = {"live": [], "replay": []}
    for seed in range(seeds):
        keras.utils.set_random_seed(seed)
        initial = keras.models.clone_model(student).get_weights()
        for name, replay_views in (("live", None), ("replay", views)):
            keras.utils.set_random_seed(seed)
            model = keras.models.clone_model(student)
            model.set_weights(initial)
            distiller = kd.recipes.patient_distiller(
                model,
                teacher,
                len(x),
                epochs,
                batch_size,
                replay_views=replay_views,
                replay_seed=seed,
            )
            distiller.fit(x, epochs=epochs, batch_size=batch_size, verbose=0)
            runs[name].append(float(distiller.evaluate(xt, yt, verbose=0)[-1]))
            logging.info("accuracy seed %d %s: %.4f", seed, name, runs[name][-1])
    summary = {"views": views, "epochs": epochs, "train_size": len(x), **runs}
    for name, values in runs.items():
        summary[f"{name}_mean"], summary[f"{name}_std"] = (
            float(np.mean(values)),
            float(np.std(values)),
        )
    summary["replay_minus_live"] = summary["replay_mean"] - summary["live_mean"]
    return summary
