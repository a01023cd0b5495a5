r"""One pipeline from teacher to device: distill, compress, export, verify, report, choose.

    python -m examples.pipeline                                  # digits, int8, about 2 min
    python -m examples.pipeline --flagfile=examples/configs/watch.cfg
    python -m examples.pipeline --pipeline_methods=kd,at --pipeline_compression=prune,prune+qat \
        --max_bytes=20000 --tensorboard_dir=/tmp/kd_logs

Stages (each writes its artifacts to ``--output_dir`` and is skipped on rerun when up to date;
see ``examples/pipeline_stages.py``): data -> teacher (trained, or ``--model``) -> scratch student
(reference) -> one distilled student per ``--pipeline_methods`` and ``--pipeline_schemes`` ->
each ``--pipeline_compression`` recipe (``+``-joined ``keras_kd.compress.apply_recipe`` steps)
on each distilled student, fine-tuned by distillation -> strip -> export for
``--pipeline_target`` -> verify every .tflite in LiteRT -> report.

Every distilled student uses ``--pipeline_logit_loss`` (by default DIST as the Distiller chooses it
for the training labels per class, ``keras_kd.losses.defaults``, unless ``--temperature`` is given;
``--alpha`` 0.5 on the labels) as its logit term; ``at`` adds attention transfer. The scratch
student starts from the same initial weights and trains as long with the same optimizer.

The report (``report.md``, ``report.html`` with its PNGs, ``report.json``) tables every candidate
(LiteRT accuracy on the test split, Keras accuracy, agreement with its Keras model, bytes, gzip
bytes, latency of one example on one thread, parameters, MACs, sparsity) with the teacher and the
scratch student as references, says how far the chosen candidate is from both, plots accuracy
against size and latency with the Pareto front, and the training curves of every loss term. The
chosen candidate is the most accurate one inside ``--max_bytes``, ``--max_latency_ms`` and
``--min_accuracy`` (0: no limit) whose file agrees with its Keras model on at least
``--pipeline_min_agreement`` of the test inputs (else it is flagged broken); the choice uses the
same test split it reports. When no candidate fits, the report says so, ``chosen`` is null and
the exit status is 3 (a CI job fails).

Output at ``--verbose=0``: one line per stage (name, seconds, key figure), the candidate table,
the report's path and, last, one JSON object. ``--verbose=1`` adds Keras progress bars inside the
training stages, ``--verbose=2`` the full logs.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import inspect
import json

from absl import flags

import keras_kd as kd
from examples import common_flags, methods
from examples.models import STUDENTS
from examples.pipeline_report import deploy, report_stage
from examples.pipeline_stages import StageRunner
from examples.pipeline_training import TrainingStages

FLAGS = flags.FlagValues()
NO_FIT_STATUS = 3
_SCHEMES = [s for s in methods.SCHEMES if s not in ("none", "multi_teacher")]

flags.DEFINE_list(
    "pipeline_methods",
    ["kd", "at"],
    f"Distillation methods, from {list(methods.METHODS)}.",
    flag_values=FLAGS,
)
flags.DEFINE_list(
    "pipeline_schemes",
    [],
    f"Training schemes giving more students, from {_SCHEMES}.",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "pipeline_logit_loss",
    "dist",
    list(TrainingStages.LOGIT_LOSSES),
    "Logit term of every distilled and fine-tuned student: dist (DIST, Huang et al. 2022), "
    "kd (Hinton KD) or kd_standardized (Sun et al. 2024), at --temperature (unset: dist is the "
    "Distiller's default for the labels per class, kd 4).",
    flag_values=FLAGS,
)
flags.DEFINE_list(
    "pipeline_compression",
    ["prune", "qat"],
    "Compression recipes applied to each distilled student; a recipe joins methods of "
    f"{list(kd.compress.RECIPE_STEPS)} with '+', e.g. prune+qat.",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "pipeline_target",
    "int8",
    list(kd.export.TARGETS),
    "Export target of every candidate.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "pipeline_finetune_epochs",
    20,
    "Epochs after each compression step.",
    lower_bound=1,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "pipeline_qat_learning_rate",
    1e-3,
    "Adam learning rate of QAT fine-tuning.",
    lower_bound=0.0,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "pipeline_sparsity",
    0.7,
    "Target sparsity of prune, in every layer with weights but the first and the last (the most "
    "sensitive: few weights per channel, per class).",
    lower_bound=0.0,
    upper_bound=0.99,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "pipeline_prune_end",
    0.5,
    "Fraction of the fine-tuning steps by which prune reaches its target sparsity; the rest "
    "recovers at that sparsity.",
    lower_bound=0.05,
    upper_bound=1.0,
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "pipeline_clusters",
    16,
    "Clusters per kernel of cluster.",
    lower_bound=2,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "pipeline_min_agreement",
    0.99,
    "A .tflite agreeing (top-1) with its Keras model on less of the test split is broken.",
    lower_bound=0.0,
    upper_bound=1.0,
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "max_bytes",
    0,
    "Budget: largest .tflite file in bytes (0: no limit).",
    lower_bound=0,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "max_latency_ms",
    0.0,
    "Budget: largest latency per example in ms (0: none).",
    lower_bound=0.0,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "min_accuracy",
    0.0,
    "Budget: lowest accuracy (0: no limit).",
    lower_bound=0.0,
    upper_bound=1.0,
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "tensorboard_dir",
    None,
    "Write TensorBoard logs (every loss term, sparsity, final metrics).",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "pipeline_student",
    "gap_cnn",
    list(STUDENTS),
    "Student architecture of every candidate: gap_cnn (examples.models.make_student: two blocks "
    "with pooling, global average pooling), small_cnn (make_small_cnn: two stride-2 "
    "convolutions and a 32-unit layer, ~0.1M MACs on 28x28) or deep_cnn (make_deep_cnn: the "
    "deep teacher's architecture, batch norm and two convolutions per block), at --student_width.",
    flag_values=FLAGS,
)
flags.DEFINE_enum(
    "pipeline_student_schedule",
    "constant",
    list(kd.recipes.SCHEDULES),
    "Learning rate of the scratch and distilled students and of each fine-tuning step: constant, "
    "or cosine (decays to 0 over each run; on Fashion-MNIST it adds about a point to both).",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "pipeline_teacher_augment",
    False,
    "Train the teacher on random shifts and flips with a cosine learning-rate decay.",
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "pipeline_teacher_learning_rate",
    0.0,
    "Adam learning rate of the teacher (0: --learning_rate).",
    lower_bound=0.0,
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "pipeline_teacher_batch_norm",
    False,
    "Batch normalization after each teacher convolution.",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "pipeline_teacher_convs_per_block",
    1,
    "3x3 convolutions per teacher block (examples.models.make_teacher): 2 for a deeper teacher "
    "when it underfits its augmented data.",
    lower_bound=1,
    upper_bound=3,
    flag_values=FLAGS,
)
flags.DEFINE_bool("pipeline_force", False, "Run every stage, even up-to-date.", flag_values=FLAGS)


def _recipes_ok(items):
    try:
        return len(set(items)) == len(items) and all(kd.compress.parse_recipe(i) for i in items)
    except ValueError:
        return False


flags.register_validator(
    "pipeline_qat_learning_rate",
    lambda rate: rate > 0,
    message="--pipeline_qat_learning_rate must be > 0",
    flag_values=FLAGS,
)
flags.register_validator(
    "tensorboard_dir",
    lambda path: path is None or (bool(path) and not os.path.isfile(path)),
    message="--tensorboard_dir must be a directory path (not an existing file)",
    flag_values=FLAGS,
)
flags.register_validator(
    "pipeline_methods",
    lambda v: bool(v) and len(set(v)) == len(v) and set(v) <= set(methods.METHODS),
    message=f"--pipeline_methods must be distinct names from {list(methods.METHODS)}",
    flag_values=FLAGS,
)
flags.register_validator(
    "pipeline_schemes",
    lambda v: len(set(v)) == len(v) and set(v) <= set(_SCHEMES),
    message=f"--pipeline_schemes must be distinct names from {_SCHEMES}",
    flag_values=FLAGS,
)
flags.register_validator(
    "pipeline_compression",
    _recipes_ok,
    message="--pipeline_compression must be distinct recipes such as prune,cluster,prune+qat "
    f"of {list(kd.compress.RECIPE_STEPS)}",
    flag_values=FLAGS,
)


@common_flags.with_settings(
    "dataset train_size batch_size learning_rate seed teacher_width student_width model"
    " unsafe_deserialization runs verbose",
    epochs=30,
    teacher_epochs=20,
    temperature=None,
    alpha=0.5,
    output_dir="keras_kd_runs/pipeline",
)
def run(
    s,
    teacher_augment=False,
    teacher_batch_norm=False,
    teacher_convs_per_block=1,
    teacher_learning_rate=0.0,
    student="gap_cnn",
    student_schedule="constant",
    logit_loss="dist",
    pipeline_methods=("kd", "at"),
    pipeline_schemes=(),
    compression=("prune", "qat"),
    finetune_epochs=20,
    qat_learning_rate=1e-3,
    sparsity=0.7,
    prune_end=0.5,
    clusters=16,
    target="int8",
    min_agreement=0.99,
    max_bytes=0,
    max_latency_ms=0.0,
    min_accuracy=0.0,
    tensorboard_dir=None,
    force=False,
):
    """Runs every stage (skipping up-to-date ones); returns the result dict (see module doc).

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    Arguments are the script's flags (``compression`` is ``--pipeline_compression``, and so on);
    ``verbose`` is 0, 1 or 2 as ``--verbose``.

    Returns:
        A dict with ``chosen`` (a name or ``None``), ``chosen_row``, ``fits_budget``, ``budget``,
        ``summary`` (the chosen candidate against the scratch student and the teacher),
        ``table`` (the candidate table as text lines), ``report_md``, ``report_html``,
        ``report_json`` and ``stages`` (``{stage: "ran" | "skipped"}``).
    """
    recipes = {r: kd.compress.parse_recipe(r) for r in compression}
    runner = StageRunner(s.output_dir, force=force, verbose=s.verbose)
    training = TrainingStages(
        runner,
        seed=s.seed,
        batch_size=s.batch_size,
        verbose=s.verbose,
        tensorboard_dir=tensorboard_dir,
        logit_loss=logit_loss,
        temperature=s.temperature,
        alpha=s.alpha,
        student=student,
        student_schedule=student_schedule,
    )
    training.data(s.dataset, s.train_size)
    training.teacher(
        s.model,
        s.teacher_epochs,
        s.teacher_width,
        teacher_learning_rate or s.learning_rate,
        s.unsafe_deserialization,
        augment=teacher_augment,
        batch_norm=teacher_batch_norm,
        convs_per_block=teacher_convs_per_block,
    )
    training.scratch(s.epochs, s.student_width, s.learning_rate)
    distilled = [*pipeline_methods, *pipeline_schemes]
    for name in distilled:
        training.distill(name, s.epochs, s.student_width, s.learning_rate)
    compressed = []
    for base in distilled:
        for recipe, parts in recipes.items():
            compressed.append(f"{base}+{recipe}")
            training.compress(
                base,
                recipe,
                parts,
                epochs=finetune_epochs,
                learning_rate=s.learning_rate,
                qat_learning_rate=qat_learning_rate,
                sparsity=sparsity,
                prune_end=prune_end,
                clusters=clusters,
            )
    rows = {}
    for name in ["teacher", "scratch", *distilled, *compressed]:
        source, upstream = training.model_source(name)
        rows[name] = deploy(runner, name, source, upstream, target, training.arrays, s.runs)
    return report_stage(
        runner,
        rows,
        distilled,
        compressed,
        target,
        s.dataset,
        {"max_bytes": max_bytes, "max_latency_ms": max_latency_ms, "min_accuracy": min_accuracy},
        min_agreement,
        tensorboard_dir,
        training.describe(),
    )


common_flags.define(FLAGS, run)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    # A run() argument is the flag of its name, or of pipeline_ + its name.
    names = {
        n: f"pipeline_{n}" for n in inspect.signature(run).parameters if f"pipeline_{n}" in FLAGS
    }
    result = run(**common_flags.arguments(run, FLAGS, **names))
    statuses = list(result["stages"].values())
    print(f"stages: {statuses.count('ran')} ran, {statuses.count('skipped')} skipped (up to date)")
    print("\n".join(result["table"]))
    print(result["summary"])
    if not result["chosen"]:
        print(f"no candidate fits the budget (see the report); exit status {NO_FIT_STATUS}")
    print(f"report: {result['report_html']}")
    print(json.dumps({k: v for k, v in result.items() if k != "table"}))
    return 0 if result["chosen"] else NO_FIT_STATUS


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
