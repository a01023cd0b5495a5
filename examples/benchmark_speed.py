r"""What distillation costs over training the student alone: live, cached and replayed teachers.

    python -m examples.benchmark_speed --dataset=fashion_mnist
    python -m examples.benchmark_speed --speed=false --accuracy_epochs=150 --seeds=3  # accuracy only

Measured in one run, each mode in its own subprocess (so peak memory is per mode):
(a) the student trained alone, (b) the Distiller with the teacher live on every step, (c) the
Distiller with cached teacher outputs, after (d) its one-time teacher pass over the training set;
with consistent-teaching augmentation (``kd.recipes.patient_distiller``: shifts, flips, MixUp;
Beyer et al. 2022), (e) the teacher live on every augmented batch and (f) replayed views
(``replay_views=K`` for each K of ``--replay_views``; Shen & Xing 2022, "A Fast Knowledge
Distillation Framework for Visual Recognition"), with the one-time cost of their K teacher passes;
(g) the teacher's pass over the training set in float32, in bfloat16 and with XLA, and the student
epoch under the ``mixed_bfloat16`` policy. Seconds per epoch are the median over the epochs after
the first (which includes tracing); peak memory is the largest resident set size sampled at batch
ends during training (the data arrays, the same in every mode, included; for (c) and (f) the stored
outputs too). The teacher has about 100x the student's multiply-accumulates.

The accuracy part (``--accuracy_epochs`` > 0) distills the student on the first
``--accuracy_train_size`` images for ``--accuracy_epochs`` epochs with the live teacher and with
replayed views (the largest K), from the same initial weights, for ``--seeds`` seeds, and reports
the test accuracy of each.

The last line is JSON with ``student_s``, ``live_s``, ``cached_s``, ``teacher_pass_s``,
``live_ratio``, ``cached_ratio``, ``live_augmented_ratio`` and ``replay_ratio`` (K = 16, or the
largest K), each relative to the student-alone epoch, and the CPU it ran on.
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

from absl import app, flags, logging

from examples import common_flags
from examples.benchmark_speed_modes import accuracy, count_macs, hard_loss, load_data, run_mode
from examples.models import make_student, make_teacher
from keras_kd import keras
from keras_kd.report import describe_machine

MODES = (
    "student",
    "live",
    "cached",
    "live_augmented",
    "replay",
    "student_bfloat16",
    "teacher_pass",
)
FLAGS = flags.FlagValues()
flags.DEFINE_bool(
    "jit_compile",
    False,
    "Compile every mode's training step with XLA (the same for all modes).",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "mode", "all", ["all", *MODES], "Internal: run one mode and print its JSON.", flag_values=FLAGS
)
flags.DEFINE_list(
    "replay_views",
    ["1", "4", "16"],
    "Views per example K of the replayed-views modes.",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "speed", True, "Measure seconds per epoch, memory and teacher passes.", flag_values=FLAGS
)
flags.DEFINE_integer(
    "accuracy_epochs",
    150,
    "Epochs of the live-vs-replay accuracy part (0: skip it).",
    lower_bound=0,
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "accuracy_train_size",
    5000,
    "Training images of the accuracy part.",
    lower_bound=1,
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "work_dir", "", "Internal: where the teacher and initial student are kept.", flag_values=FLAGS
)
flags.register_validator(
    "replay_views",
    lambda values: bool(values) and all(v.isdigit() and int(v) >= 1 for v in values),
    message="--replay_views must be a comma-separated list of integers >= 1",
    flag_values=FLAGS,
)
flags.register_multi_flags_validator(
    ["mode", "work_dir"],
    lambda values: values["mode"] == "all" or os.path.isdir(values["work_dir"]),
    message="--work_dir must be an existing directory when --mode is not all",
    flag_values=FLAGS,
)


def _subprocess(mode, work_dir, args, **extra):
    """Runs one mode in a fresh interpreter and returns its JSON."""
    values = {**args, "mode": mode, "work_dir": work_dir, **extra}
    command = [sys.executable, "-m", "examples.benchmark_speed"]
    command += [
        f"--{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in values.items()
    ]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"mode {mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@common_flags.with_settings(
    "train_size seed",
    dataset="fashion_mnist",
    epochs=4,
    teacher_epochs=1,
    batch_size=128,
    seeds=3,
    teacher_width=96,
    student_width=8,
)
def run(
    s,
    jit_compile=False,
    replay_views=(1, 4, 16),
    speed=True,
    accuracy_epochs=0,
    accuracy_train_size=5000,
):
    """Prepares a teacher and a student, measures each mode in a subprocess, returns the summary.

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).
    """
    (x, y), _ = load_data(s.dataset, s.train_size)
    classes = int(y.max()) + 1
    keras.utils.set_random_seed(s.seed)
    teacher = make_teacher(x.shape[1:], classes, width=s.teacher_width)
    student = make_student(x.shape[1:], classes, width=s.student_width)
    teacher.compile(keras.optimizers.Adam(1e-3), hard_loss())
    logging.info("Training the teacher for %d epochs", s.teacher_epochs)
    teacher.fit(x, y, batch_size=s.batch_size, epochs=s.teacher_epochs, verbose=0)
    summary = {
        "teacher_macs": count_macs(teacher),
        "student_macs": count_macs(student),
        "train_examples": len(x),
        "jit_compile": jit_compile,
        **describe_machine(),
    }
    args = {
        "dataset": s.dataset,
        "train_size": s.train_size,
        "epochs": s.epochs,
        "batch_size": s.batch_size,
        "seed": s.seed,
        "jit_compile": jit_compile,
    }
    views = [int(v) for v in replay_views]
    if speed:
        with tempfile.TemporaryDirectory() as work_dir:
            teacher.save(os.path.join(work_dir, "teacher.keras"))
            student.save(os.path.join(work_dir, "student.keras"))
            for mode in MODES:
                for k in views if mode == "replay" else [None]:
                    name = mode if k is None else f"replay{k}"
                    logging.info("Measuring mode %s", name)
                    extra = {} if k is None else {"replay_views": k}
                    summary[name] = _subprocess(mode, work_dir, args, **extra)
                    logging.info("Mode %s: %s", name, json.dumps(summary[name]))
        summary.update(_ratios(summary, views))
    if accuracy_epochs:
        summary["accuracy"] = accuracy(
            teacher,
            student,
            s.dataset,
            accuracy_train_size,
            accuracy_epochs,
            s.batch_size,
            s.seeds,
            max(views),
        )
    return summary


common_flags.define(FLAGS, run)


def _ratios(s, views):
    student_s = s["student"]["epoch_s"]
    live_s, cached_s = s["live"]["epoch_s"], s["cached"]["epoch_s"]
    teacher_pass_s = s["cached"]["teacher_pass_s"]
    k = 16 if 16 in views else max(views)
    return {
        "student_s": student_s,
        "live_s": live_s,
        "cached_s": cached_s,
        "teacher_pass_s": teacher_pass_s,
        "live_ratio": live_s / student_s,
        "cached_ratio": cached_s / student_s,
        "live_vs_student_plus_pass": live_s / (student_s + teacher_pass_s),
        "memory_ratio": s["cached"]["peak_rss_mb"] / s["student"]["peak_rss_mb"],
        "macs_ratio": s["teacher_macs"] / s["student_macs"],
        "live_augmented_s": s["live_augmented"]["epoch_s"],
        "live_augmented_ratio": s["live_augmented"]["epoch_s"] / student_s,
        "replay_views": k,
        "replay_s": s[f"replay{k}"]["epoch_s"],
        "replay_ratio": s[f"replay{k}"]["epoch_s"] / student_s,
        "replay_teacher_s": s[f"replay{k}"]["teacher_s"],
        "replay_memory_ratio": s[f"replay{k}"]["peak_rss_mb"] / s["student"]["peak_rss_mb"],
        "student_bfloat16_ratio": s["student_bfloat16"]["epoch_s"] / student_s,
        **{k2: v for k2, v in s["teacher_pass"].items() if k2.startswith(("teacher_pass_", "bf"))},
    }


def _print_tables(s):
    print(f"CPU: {s['cpu']} ({s['cores']} cores, AMX: {s['amx']})")
    if "student" in s:
        print(
            f"teacher/student multiply-accumulates: {s['macs_ratio']:.0f}x ({s['train_examples']} training examples)"
        )
        print("| mode | s/epoch | vs student | peak RSS MB | test accuracy | one-time teacher s |")
        print("| --- | --- | --- | --- | --- | --- |")
        rows = [
            ("student", "(a) student alone"),
            ("live", "(b) Distiller, live teacher"),
            ("cached", "(c) Distiller, cached teacher"),
            ("live_augmented", "(e) consistent views, live teacher"),
            *[
                (k, f"(f) consistent views, replayed K={s[k]['views']}")
                for k in s
                if k.startswith("replay") and isinstance(s[k], dict)
            ],
            ("student_bfloat16", "(g) student alone, mixed_bfloat16"),
        ]
        for mode, label in rows:
            m = s[mode]
            once = m.get("teacher_pass_s", m.get("teacher_s"))
            print(
                f"| {label} | {m['epoch_s']:.2f} | {m['epoch_s'] / s['student_s']:.2f}x | {m['peak_rss_mb']:.0f} | {m['accuracy']:.4f} | {'' if once is None else f'{once:.1f}'} |"
            )
        p = s["teacher_pass"]
        print(
            f"(g) teacher pass over the training set: float32 {p['teacher_pass_float32_s']:.2f} s, bfloat16 {p['teacher_pass_bfloat16_s']:.2f} s "
            f"(top-1 agreement {p['bfloat16_top1_agreement']:.4f}), XLA {p['teacher_pass_xla_s']:.2f} s"
        )
    if "accuracy" in s:
        a = s["accuracy"]
        print(
            f"accuracy after {a['epochs']} epochs on {a['train_size']} images over {len(a['live'])} seeds: live {a['live_mean']:.4f} +- {a['live_std']:.4f}, "
            f"replay K={a['views']} {a['replay_mean']:.4f} +- {a['replay_std']:.4f}"
        )


def main(argv):
    common_flags.reject_extra_arguments(argv)
    # Checked here, not by a validator, so that the message names the first, untimed epoch.
    if FLAGS.epochs < 2:
        raise app.UsageError(
            f"--epochs must be >= 2 (the first is not timed), received: --epochs={FLAGS.epochs}"
        )
    args = {
        name: FLAGS[name].value
        for name in ("dataset", "train_size", "epochs", "batch_size", "seed", "jit_compile")
    }
    views = [int(v) for v in FLAGS.replay_views]
    if FLAGS.mode != "all":
        result = run_mode(FLAGS.mode, work_dir=FLAGS.work_dir, replay_views=views[0], **args)
        print(json.dumps(result))
        return
    s = run(**common_flags.arguments(run, FLAGS))
    _print_tables(s)
    flat = {k: v for k, v in s.items() if not isinstance(v, dict)}
    if "accuracy" in s:
        flat.update({f"accuracy_{k}": v for k, v in s["accuracy"].items()})
    print(json.dumps(flat))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
