r"""README's compression table: every keras_kd.compress method on one student, distilled and not.

    python -m examples.benchmark_compress --dataset=fashion_mnist \
        --train_size=8000 --epochs=6 --finetune_epochs=3 --teacher_epochs=4

The teacher trains once. A float student is trained ``--epochs`` epochs (by distillation, then
again on the labels alone), and every row starts from it: float (the same extra epochs), pruned
50/80/90 %, 2:4 structured, unit-pruned 50 %, clustered 16, QAT int8, pruned 80 % + QAT, low-rank
(Dense, rank 4) and slim (separable + low-rank), each compressed by
``keras_kd.compress.apply_recipe`` and fine-tuned ``--finetune_epochs`` epochs. Reported per row
as ``examples/compress.py`` reports one model (``examples/compress_measure.py``: accuracy,
parameters, sparsity, gzip .h5 bytes, TFLite bytes from ``keras_kd.export``, Keras latency). Prints
the markdown table; the last line of output is one JSON object.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json
import math

from absl import flags, logging

from examples import common_flags
from examples.compress_measure import measure
from examples.compress_recipes import float_student, teacher_and_data
from keras_kd import compress, keras

FLAGS = flags.FlagValues()
flags.DEFINE_integer(
    "finetune_epochs", 4, "Epochs after each compression step.", lower_bound=1, flag_values=FLAGS
)

ROWS = (
    ("float", (), {}),
    ("pruned 50%", ("prune",), {"sparsity": 0.5}),
    ("pruned 80%", ("prune",), {"sparsity": 0.8}),
    ("pruned 90%", ("prune",), {"sparsity": 0.9}),
    ("2:4 structured", ("prune",), {"m_by_n": (2, 4)}),
    ("unit-pruned 50%", ("units",), {}),
    ("clustered 16", ("cluster",), {}),
    ("QAT int8", ("qat",), {}),
    ("pruned 80% + QAT", ("prune", "qat"), {"sparsity": 0.8}),
    ("low-rank (Dense, rank 4)", ("lowrank",), {}),
    ("slim (separable + low-rank)", ("slim",), {}),
)


@common_flags.with_settings(
    "dataset train_size epochs teacher_epochs batch_size learning_rate temperature alpha seed"
    " teacher_width student_width verbose",
    output_dir="keras_kd_runs/compress_benchmark",
)
def run(s, finetune_epochs=4, rows=None, tflite=True):
    """Every row of ``ROWS`` (or those labelled in ``rows``), distilled and on labels alone.

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    Returns:
        ``{"teacher_acc", "train_size", "test_size", "rows": [measure(...) + row, distilled]}``.

    Raises:
        ValueError: If ``rows`` names a row not in ``ROWS``.
    """
    unknown = sorted(set(rows or ()) - {label for label, _, _ in ROWS})
    if unknown:
        raise ValueError(
            f"rows must be labels of ROWS {[label for label, _, _ in ROWS]}, received: {unknown}"
        )
    os.makedirs(s.output_dir, exist_ok=True)
    (x, y), (x_test, y_test), classes, teacher, teacher_acc = teacher_and_data(s)
    steps = finetune_epochs * math.ceil(len(x) / s.batch_size)
    results = []
    for distill in (True, False):
        base, fine_tune = float_student(s, teacher, x, y, classes, distill)
        finetune = fine_tune(finetune_epochs)
        for label, methods, options in ROWS:
            if rows is not None and label not in rows:
                continue
            logging.info("%s (%s)", label, "distilled" if distill else "labels only")
            keras.utils.set_random_seed(s.seed + 2)
            model = compress.strip(base)
            if not methods:
                finetune(model)  # the float row gets the same extra epochs
            elif methods == ("lowrank",):
                model = compress.low_rank(model, rank=4)
                finetune(model)
            else:
                model = compress.apply_recipe(model, methods, finetune, steps, **options)
            name = f"{'kd' if distill else 'labels'}_{len(results):02d}"
            result = measure(model, name, x_test, y_test, s.output_dir, tflite)
            results.append({"row": label, "distilled": distill, **result})
    return {
        "teacher_acc": teacher_acc,
        "train_size": len(x),
        "test_size": len(x_test),
        "rows": results,
    }


def markdown_table(report):
    """The benchmark as a markdown table: one line per row, distilled beside labels only."""
    by_key = {(r["row"], r["distilled"]): r for r in report["rows"]}
    lines = [
        "| student | parameters | sparsity | acc. distilled | acc. labels only | gzip .h5 bytes "
        "| gzip .tflite bytes | Keras ms (batch 256) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label in dict.fromkeys(r["row"] for r in report["rows"]):
        kd_row, plain = by_key.get((label, True)), by_key.get((label, False))
        shown = kd_row or plain
        lines.append(
            f"| {label} | {shown['parameters']:,} | {shown['sparsity']:.2f} | "
            f"{kd_row['accuracy']:.4f} | {plain['accuracy']:.4f} | {shown['gzip_h5_bytes']:,} | "
            f"{shown.get('gzip_tflite_bytes', 0):,} | {shown['latency_ms_batch256']:.1f} |"
            if kd_row and plain
            else f"| {label} | {shown['parameters']:,} | | {shown['accuracy']:.4f} | | | | |"
        )
    return "\n".join(lines)


common_flags.define(FLAGS, run)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    report = run(**common_flags.arguments(run, FLAGS))
    print(f"teacher accuracy {report['teacher_acc']:.4f}")
    print(markdown_table(report))
    print(json.dumps(report))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
