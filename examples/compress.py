r"""Distills a student, compresses it with keras_kd.compress while it keeps distilling, and reports.

    python -m examples.compress --compression=prune
    python -m examples.compress --compression=units,prune,qat \
        --dataset=fashion_mnist
    python -m examples.compress --benchmark --dataset=fashion_mnist \
        --train_size=8000 --epochs=6 --finetune_epochs=3 --teacher_epochs=4

One run: teacher -> distilled float student -> each of ``--compression`` in a fixed order (slim,
units, prune, cluster, qat; every step starts from the previous model and fine-tunes it for
``--finetune_epochs`` by distillation, or on the labels alone with ``--nodistill``) -> strip ->
report. ``slim`` is ``depthwise_separable`` followed by ``low_rank``; ``prune`` then ``qat`` uses
pruning-preserving QAT and ``cluster`` then ``qat`` cluster-preserving QAT.

Reported per model: test accuracy (Keras; for QAT the fake-quantized model, which the int8 TFLite
model follows closely), parameters, sparsity, ``gzip_h5_bytes`` (gzip -9 of the stripped model's
weights saved as .h5: float32 storage, where sparse and clustered weights compress well),
``tflite_bytes`` and ``gzip_tflite_bytes`` (float32 TFLite, int8 for QAT models; converted in a
subprocess because the converter leaks memory) and the Keras inference latency (median of a
compiled ``model(x, training=False)`` call, batch 1 and batch 256, under whatever load the
machine has; ``keras_speedup_batch256`` compares the float and the compressed student in
interleaved runs, the fairer figure on a shared machine).
``--benchmark`` runs the README table instead: float, pruned 50/80/90 %, 2:4, unit-pruned,
clustered 16, QAT int8, pruned + QAT, low-rank and slim, each distilled and on labels alone.
The last line of output is one JSON object.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json
import math

from absl import app, flags, logging

import keras_kd as kd
from examples import common_flags
from examples.compress_measure import add_tflite_sizes, keras_speedup, measure
from examples.compress_recipes import METHODS, apply_methods, make_train_fn, valid_methods
from examples.compress_recipes import float_params as _float_params
from examples.models import make_student, make_teacher
from keras_kd import compress, keras

common_flags.set_defaults(
    dataset="digits",
    train_size=0,
    epochs=10,
    teacher_epochs=10,
    teacher_width=32,
    student_width=16,
    batch_size=64,
    learning_rate=3e-3,
    temperature=4.0,
    alpha=0.1,
    seed=0,
    output_dir="keras_kd_runs/compress",
)
_METHODS = flags.DEFINE_list(
    "compression", ["prune"], f"Comma list of compression methods from {list(METHODS)}."
)
_BENCHMARK = flags.DEFINE_bool("benchmark", False, "Run the README table instead of one pipeline.")
_DISTILL = flags.DEFINE_bool(
    "distill", True, "Fine-tune by distillation (--nodistill: on the labels alone)."
)
_FINETUNE_EPOCHS = flags.DEFINE_integer(
    "finetune_epochs", 4, "Epochs after each compression step.", lower_bound=1
)
_TARGET_SPARSITY = flags.DEFINE_float(
    "target_sparsity", 0.8, "Target sparsity of prune.", lower_bound=0.0, upper_bound=0.99
)
_UNITS_FRACTION = flags.DEFINE_float(
    "units_fraction", 0.5, "Fraction of units removed by units.", lower_bound=0.0, upper_bound=0.95
)
_CLUSTERS = flags.DEFINE_integer("clusters", 16, "Clusters per kernel.", lower_bound=2)
_ENERGY = flags.DEFINE_float(
    "energy", 0.9, "Energy kept by low_rank (slim).", lower_bound=0.01, upper_bound=1.0
)
_TFLITE = flags.DEFINE_bool(
    "tflite", True, "Also convert to TFLite (in a subprocess) and report its sizes."
)


flags.register_validator(
    "compression",
    valid_methods,
    message=f"--compression must be a comma list of distinct names from {list(METHODS)}",
)


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _setup(
    dataset, train_size, seed, teacher_epochs, teacher_width, batch_size, learning_rate, verbose
):
    (x_train, y_train), (x_test, y_test) = kd.data.load(dataset)
    if train_size:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    keras.utils.set_random_seed(seed)
    teacher = make_teacher(x_train.shape[1:], num_classes, width=teacher_width)
    teacher.compile(keras.optimizers.Adam(learning_rate), _loss(), metrics=["accuracy"])
    logging.info("Training the teacher on %d examples", len(x_train))
    teacher.fit(x_train, y_train, epochs=teacher_epochs, batch_size=batch_size, verbose=verbose)
    teacher_acc = float(teacher.evaluate(x_test, y_test, verbose=0)[1])
    return (x_train, y_train), (x_test, y_test), num_classes, teacher, teacher_acc


def run(
    dataset="digits",
    methods=("prune",),
    distill=True,
    train_size=0,
    epochs=10,
    finetune_epochs=4,
    teacher_epochs=10,
    teacher_width=32,
    student_width=16,
    batch_size=64,
    learning_rate=3e-3,
    temperature=4.0,
    alpha=0.1,
    sparsity=0.8,
    units_fraction=0.5,
    clusters=16,
    energy=0.9,
    seed=0,
    output_dir="keras_kd_runs/compress",
    verbose=0,
    tflite=True,
):
    """Teacher -> float student -> ``methods`` -> strip; returns the report (see module doc)."""
    if not valid_methods(list(methods)):
        raise ValueError(
            f"methods must be distinct names from {list(METHODS)}, "
            f"received: methods={list(methods)}"
        )
    os.makedirs(output_dir, exist_ok=True)
    (x, y), (x_test, y_test), classes, teacher, teacher_acc = _setup(
        dataset, train_size, seed, teacher_epochs, teacher_width, batch_size, learning_rate, verbose
    )
    common = dict(
        batch_size=batch_size,
        learning_rate=learning_rate,
        temperature=temperature,
        alpha=alpha,
        distill=distill,
        verbose=verbose,
    )
    keras.utils.set_random_seed(seed + 1)
    student = make_student(x.shape[1:], classes, width=student_width)
    make_train_fn(teacher, x, y, epochs, **common)(student)
    steps = finetune_epochs * math.ceil(len(x) / batch_size)
    compressed = apply_methods(
        student,
        methods,
        make_train_fn(teacher, x, y, finetune_epochs, **common),
        steps,
        sparsity,
        units_fraction,
        clusters,
        energy,
    )
    results = [
        measure(student, "float", x_test, y_test, output_dir),
        measure(
            compressed,
            "_".join(m for m in METHODS if m in methods),
            x_test,
            y_test,
            output_dir,
            _float_params(compressed),
        ),
    ]
    results[1]["keras_speedup_batch256"] = round(keras_speedup(student, compressed, x_test), 3)
    if tflite:
        add_tflite_sizes(results)
    return {
        "teacher_acc": teacher_acc,
        "distilled": distill,
        "methods": list(methods),
        "float": results[0],
        "compressed": results[1],
    }


_BENCHMARK_ROWS = (
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


def benchmark(
    dataset="digits",
    train_size=0,
    epochs=10,
    finetune_epochs=4,
    teacher_epochs=10,
    teacher_width=32,
    student_width=16,
    batch_size=64,
    learning_rate=3e-3,
    temperature=4.0,
    alpha=0.1,
    seed=0,
    output_dir="keras_kd_runs/compress_benchmark",
    verbose=0,
    rows=None,
):
    """The README table: each row of ``_BENCHMARK_ROWS`` (or those named in ``rows``), distilled
    and on labels alone."""
    os.makedirs(output_dir, exist_ok=True)
    (x, y), (x_test, y_test), classes, teacher, teacher_acc = _setup(
        dataset, train_size, seed, teacher_epochs, teacher_width, batch_size, learning_rate, verbose
    )
    steps = finetune_epochs * math.ceil(len(x) / batch_size)
    results = []
    for distill in (True, False):
        common = dict(
            batch_size=batch_size,
            learning_rate=learning_rate,
            temperature=temperature,
            alpha=alpha,
            distill=distill,
            verbose=verbose,
        )
        keras.utils.set_random_seed(seed + 1)
        base = make_student(x.shape[1:], classes, width=student_width)
        make_train_fn(teacher, x, y, epochs, **common)(base)
        finetune = make_train_fn(teacher, x, y, finetune_epochs, **common)
        for label, methods, options in _BENCHMARK_ROWS:
            if rows is not None and label not in rows:
                continue
            logging.info("%s (%s)", label, "distilled" if distill else "labels only")
            keras.utils.set_random_seed(seed + 2)
            model = compress.strip(base)
            if not methods:
                finetune(model)  # the float row gets the same extra epochs
            elif methods == ("lowrank",):
                model = compress.low_rank(model, rank=4)
                finetune(model)
            else:
                model = apply_methods(model, methods, finetune, steps, **options)
            name = f"{'kd' if distill else 'labels'}_{len(results):02d}"
            result = measure(model, name, x_test, y_test, output_dir, _float_params(model))
            results.append({"row": label, "distilled": distill, **result})
    add_tflite_sizes(results)
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
            f"{shown['gzip_tflite_bytes']:,} | {shown['latency_ms_batch256']:.1f} |"
            if kd_row and plain
            else f"| {label} | {shown['parameters']:,} | | {shown['accuracy']:.4f} | | | | |"
        )
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common = dict(
        dataset=common_flags.DATASET.value,
        train_size=common_flags.TRAIN_SIZE.value,
        epochs=common_flags.EPOCHS.value,
        finetune_epochs=_FINETUNE_EPOCHS.value,
        teacher_epochs=common_flags.TEACHER_EPOCHS.value,
        teacher_width=common_flags.TEACHER_WIDTH.value,
        student_width=common_flags.STUDENT_WIDTH.value,
        batch_size=common_flags.BATCH_SIZE.value,
        learning_rate=common_flags.LEARNING_RATE.value,
        temperature=common_flags.TEMPERATURE.value,
        alpha=common_flags.ALPHA.value,
        seed=common_flags.SEED.value,
        output_dir=common_flags.OUTPUT_DIR.value,
        verbose=common_flags.keras_verbosity(),
    )
    if _BENCHMARK.value:
        report = benchmark(**common)
        print(f"teacher accuracy {report['teacher_acc']:.4f}")
        print(markdown_table(report))
    else:
        report = run(
            methods=_METHODS.value,
            distill=_DISTILL.value,
            sparsity=_TARGET_SPARSITY.value,
            units_fraction=_UNITS_FRACTION.value,
            clusters=_CLUSTERS.value,
            energy=_ENERGY.value,
            tflite=_TFLITE.value,
            **common,
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
    common_flags.run_app(main)
