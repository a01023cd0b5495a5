r"""Distills a student, compresses it with keras_kd.compress while it keeps distilling, and reports.

    python -m examples.compress --compression=prune
    python -m examples.compress --compression=units,prune,qat \
        --dataset=fashion_mnist

One run: teacher -> distilled float student -> each of ``--compression`` in a fixed order (slim,
units, prune, cluster, qat: ``keras_kd.compress.apply_recipe``; every step starts from the previous
model and fine-tunes it for ``--finetune_epochs`` by distillation, or on the labels alone with
``--nodistill``) -> strip -> report. ``slim`` is ``depthwise_separable`` followed by ``low_rank``; ``prune`` then ``qat`` uses
pruning-preserving QAT and ``cluster`` then ``qat`` cluster-preserving QAT.

Reported per model: test accuracy (Keras; for QAT the fake-quantized model, which the int8 TFLite
model follows closely), parameters, sparsity, ``gzip_h5_bytes`` (gzip -9 of the stripped model's
weights saved as .h5: float32 storage, where sparse and clustered weights compress well),
``tflite_bytes`` and ``gzip_tflite_bytes`` (``keras_kd.export.to_tflite``: float32, int8 for QAT
models) and the Keras inference latency (median of a
compiled ``model(x, training=False)`` call, batch 1 and batch 256, under whatever load the
machine has; ``keras_speedup_batch256`` compares the float and the compressed student in
interleaved runs, the fairer figure on a shared machine).
``examples/benchmark_compress.py`` runs README's table of every method.
The last line of output is one JSON object.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json
import math

from absl import flags

from examples import common_flags
from examples.compress_measure import keras_speedup, measure
from examples.compress_recipes import float_student, teacher_and_data
from keras_kd import compress

FLAGS = flags.FlagValues()
flags.DEFINE_list(
    "compression",
    ["prune"],
    f"Comma list of compression methods from {list(compress.RECIPE_STEPS)}.",
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "distill",
    True,
    "Fine-tune by distillation (--nodistill: on the labels alone).",
    flag_values=FLAGS,
)
flags.DEFINE_integer(
    "finetune_epochs", 4, "Epochs after each compression step.", lower_bound=1, flag_values=FLAGS
)
flags.DEFINE_float(
    "target_sparsity",
    0.8,
    "Target sparsity of prune.",
    lower_bound=0.0,
    upper_bound=0.99,
    flag_values=FLAGS,
)
flags.DEFINE_float(
    "units_fraction",
    0.5,
    "Fraction of units removed by units.",
    lower_bound=0.0,
    upper_bound=0.95,
    flag_values=FLAGS,
)
flags.DEFINE_integer("clusters", 16, "Clusters per kernel.", lower_bound=2, flag_values=FLAGS)
flags.DEFINE_float(
    "energy",
    0.9,
    "Energy kept by low_rank (slim).",
    lower_bound=0.01,
    upper_bound=1.0,
    flag_values=FLAGS,
)
flags.DEFINE_bool(
    "tflite",
    True,
    "Also convert to TFLite (keras_kd.export) and report its sizes.",
    flag_values=FLAGS,
)
flags.register_validator(
    "compression",
    lambda names: _is_recipe(names),
    message="--compression must be a comma list of distinct names from "
    f"{list(compress.RECIPE_STEPS)}",
    flag_values=FLAGS,
)


def _is_recipe(names):
    try:
        compress.parse_recipe(names)
    except ValueError:
        return False
    return True


@common_flags.with_settings(
    "dataset train_size epochs teacher_epochs batch_size learning_rate temperature alpha seed"
    " teacher_width student_width verbose",
    output_dir="keras_kd_runs/compress",
)
def run(
    s,
    methods=("prune",),
    distill=True,
    finetune_epochs=4,
    sparsity=0.8,
    units_fraction=0.5,
    clusters=16,
    energy=0.9,
    tflite=True,
):
    """Teacher -> float student -> ``methods`` -> strip; returns the report (see module doc).

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).
    """
    if not _is_recipe(list(methods)):
        raise ValueError(
            f"methods must be distinct names from {list(compress.RECIPE_STEPS)}, "
            f"received: methods={list(methods)}"
        )
    os.makedirs(s.output_dir, exist_ok=True)
    (x, y), (x_test, y_test), classes, teacher, teacher_acc = teacher_and_data(s)
    student, fine_tune = float_student(s, teacher, x, y, classes, distill)
    compressed = compress.apply_recipe(
        student,
        methods,
        fine_tune(finetune_epochs),
        finetune_epochs * math.ceil(len(x) / s.batch_size),
        sparsity,
        units_fraction,
        clusters,
        energy,
    )
    name = "_".join(m for m in compress.RECIPE_STEPS if m in methods)
    results = [
        measure(student, "float", x_test, y_test, s.output_dir, tflite),
        measure(compressed, name, x_test, y_test, s.output_dir, tflite),
    ]
    results[1]["keras_speedup_batch256"] = round(keras_speedup(student, compressed, x_test), 3)
    return {
        "teacher_acc": teacher_acc,
        "distilled": distill,
        "methods": list(methods),
        "float": results[0],
        "compressed": results[1],
    }


common_flags.define(FLAGS, run)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    report = run(
        **common_flags.arguments(run, FLAGS, methods="compression", sparsity="target_sparsity")
    )
    print(f"teacher accuracy {report['teacher_acc']:.4f}")
    for key in ("float", "compressed"):
        r = report[key]
        print(
            f"{r['name']:>24}: accuracy {r['accuracy']:.4f}, {r['parameters']:,} parameters, "
            f"gzip .h5 {r['gzip_h5_bytes']:,} B, "
            f"gzip .tflite {r.get('gzip_tflite_bytes', 'n/a')} B, "
            f"{r['latency_ms_batch1']:.2f} ms (batch 1), "
            f"{r['latency_ms_batch256']:.2f} ms (batch 256)"
        )
    print(json.dumps(report))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
