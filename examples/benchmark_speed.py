r"""What distillation costs over training the student alone: live teacher vs cached teacher outputs.

    python -m examples.benchmark_speed --dataset=fashion_mnist

Measured in one run, each mode in its own subprocess (so peak memory is per mode):
(a) the student trained alone, (b) the Distiller with the teacher live on every step, (c) the
Distiller with cached teacher outputs, after (d) its one-time teacher pass over the training set.
Seconds per epoch are the median over the epochs after the first (which includes tracing); peak
memory is the largest resident set size sampled at batch ends during training (the data arrays, the
same in every mode, included; for (c) the cache too). The
teacher has about 100x the student's multiply-accumulates. The last line is JSON with
``student_s``, ``live_s``, ``cached_s``, ``teacher_pass_s``, ``live_ratio`` and ``cached_ratio``.
Keras trains silently whatever ``--verbose`` says: progress output would be timed too.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json
import subprocess
import tempfile
import time

import numpy as np
from absl import app, flags, logging

import keras_kd as kd
from examples import common_flags
from examples.models import make_student, make_teacher
from keras_kd import keras

common_flags.set_defaults(
    dataset="fashion_mnist",
    train_size=0,
    epochs=4,
    batch_size=128,
    teacher_width=96,
    student_width=8,
    seed=0,
)
_JIT_COMPILE = flags.DEFINE_bool(
    "jit_compile", False, "Compile every mode's training step with XLA (the same for all modes)."
)
_MODE = flags.DEFINE_enum(
    "mode",
    "all",
    ["all", "student", "live", "cached"],
    "Internal: run one mode and print its JSON.",
)
_WORK_DIR = flags.DEFINE_string(
    "work_dir", "", "Internal: where the teacher and initial student are kept."
)
flags.register_multi_flags_validator(
    ["mode", "work_dir"],
    lambda values: values["mode"] == "all" or os.path.isdir(values["work_dir"]),
    message="--work_dir must be an existing directory when --mode is not all",
)


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


def _data(dataset, train_size):
    (x, y), (xt, yt) = kd.data.load(dataset)
    if train_size:
        x, y = x[:train_size], y[:train_size]
    return (x, y), (xt, yt)


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def run_mode(mode, dataset, train_size, epochs, batch_size, seed, work_dir, jit_compile=False):
    """Trains one mode from the saved teacher and initial student; returns its measurements."""
    (x, y), (xt, yt) = _data(dataset, train_size)
    student = keras.models.load_model(os.path.join(work_dir, "student.keras"))
    keras.utils.set_random_seed(seed)
    result = {"mode": mode, "data_rss_mb": _rss_mb()}
    if mode == "student":
        model = student
        model.compile(
            keras.optimizers.Adam(3e-3), _loss(), metrics=["accuracy"], jit_compile=jit_compile
        )
    else:
        teacher = keras.models.load_model(os.path.join(work_dir, "teacher.keras"))
        model = kd.Distiller(student, teacher, cache_teacher=(mode == "cached"))
        model.compile(
            keras.optimizers.Adam(3e-3), _loss(), metrics=["accuracy"], jit_compile=jit_compile
        )
    if mode == "cached":
        start = time.perf_counter()
        model._teacher_cache.annotate(x, batch_size=max(batch_size, 256))
        result["teacher_pass_s"] = time.perf_counter() - start
    timer = _EpochTimer(peak_mb=_rss_mb())
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[timer])
    result["epoch_s"] = float(np.median(timer.seconds[1:]))
    result["accuracy"] = float(model.evaluate(xt, yt, verbose=0)[1])
    result["peak_rss_mb"] = timer.peak_mb
    return result


def run(
    dataset,
    train_size=0,
    epochs=4,
    batch_size=128,
    teacher_width=96,
    student_width=8,
    seed=0,
    jit_compile=False,
):
    """Prepares a teacher and a student, measures each mode in a subprocess, returns the summary."""
    (x, y), _ = _data(dataset, train_size)
    classes = int(y.max()) + 1
    keras.utils.set_random_seed(seed)
    teacher = make_teacher(x.shape[1:], classes, width=teacher_width)
    student = make_student(x.shape[1:], classes, width=student_width)
    teacher.compile(keras.optimizers.Adam(1e-3), _loss())
    logging.info("Training the teacher for one epoch")
    teacher.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    summary = {
        "teacher_macs": count_macs(teacher),
        "student_macs": count_macs(student),
        "train_examples": len(x),
        "jit_compile": jit_compile,
    }
    with tempfile.TemporaryDirectory() as work_dir:
        teacher.save(os.path.join(work_dir, "teacher.keras"))
        student.save(os.path.join(work_dir, "student.keras"))
        for mode in ("student", "live", "cached"):
            logging.info("Measuring mode %s", mode)
            command = [
                sys.executable,
                "-m",
                "examples.benchmark_speed",
                f"--mode={mode}",
                f"--work_dir={work_dir}",
                f"--dataset={dataset}",
                f"--train_size={train_size}",
                f"--epochs={epochs}",
                f"--batch_size={batch_size}",
                f"--seed={seed}",
                f"--jit_compile={jit_compile}",
            ]
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"mode {mode} failed:\n{done.stderr[-3000:]}")
            summary[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    student_s, live_s, cached_s = (summary[m]["epoch_s"] for m in ("student", "live", "cached"))
    teacher_pass_s = summary["cached"]["teacher_pass_s"]
    summary.update(
        student_s=student_s,
        live_s=live_s,
        cached_s=cached_s,
        teacher_pass_s=teacher_pass_s,
        live_ratio=live_s / student_s,
        cached_ratio=cached_s / student_s,
        live_vs_student_plus_pass=live_s / (student_s + teacher_pass_s),
        memory_ratio=summary["cached"]["peak_rss_mb"] / summary["student"]["peak_rss_mb"],
        macs_ratio=summary["teacher_macs"] / summary["student_macs"],
    )
    return summary


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Checked here, not by a validator: --epochs is shared, and a validator would bind every script.
    if common_flags.EPOCHS.value < 2:
        raise app.UsageError(
            f"--epochs must be >= 2 (the first is not timed), received: --epochs={common_flags.EPOCHS.value}"
        )
    args = {
        "dataset": common_flags.DATASET.value,
        "train_size": common_flags.TRAIN_SIZE.value,
        "epochs": common_flags.EPOCHS.value,
        "batch_size": common_flags.BATCH_SIZE.value,
        "seed": common_flags.SEED.value,
        "jit_compile": _JIT_COMPILE.value,
    }
    if _MODE.value != "all":
        print(json.dumps(run_mode(_MODE.value, work_dir=_WORK_DIR.value, **args)))
        return
    s = run(
        teacher_width=common_flags.TEACHER_WIDTH.value,
        student_width=common_flags.STUDENT_WIDTH.value,
        **args,
    )
    print(
        f"teacher/student multiply-accumulates: {s['macs_ratio']:.0f}x ({s['train_examples']} training examples)"
    )
    print("| mode | s/epoch | vs student | peak RSS MB | test accuracy |")
    print("| --- | --- | --- | --- | --- |")
    for mode, label in (
        ("student", "(a) student alone"),
        ("live", "(b) Distiller, live teacher"),
        ("cached", "(c) Distiller, cached teacher"),
    ):
        m = s[mode]
        print(
            f"| {label} | {m['epoch_s']:.2f} | {m['epoch_s'] / s['student_s']:.2f}x | {m['peak_rss_mb']:.0f} | {m['accuracy']:.4f} |"
        )
    print(f"| (d) one teacher pass (cache build) | {s['teacher_pass_s']:.2f} | | | |")
    print(json.dumps({k: v for k, v in s.items() if not isinstance(v, dict)}))


if __name__ == "__main__":
    common_flags.run_app(main)
