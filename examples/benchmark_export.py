r"""Keras float vs every TFLite target (and QAT / pruned int8): accuracy, size and latency.

    nice -n 10 python -m examples.benchmark_export --train_size=20000 --epochs=5

Trains the example student on Fashion-MNIST (or loads ``--model``), exports it for every
``keras_kd.export`` target and runs each file in the LiteRT interpreter on the whole test split.
When ``keras_kd.compress`` is installed it adds two rows: the student fine-tuned with
quantization-aware training then exported as int8 (``qat_int8``), and the student pruned to
``--sparsity`` with a constant schedule (masks updated every 20 steps), stripped and exported as
int8 (``pruned_int8``). Agreement is the top-1 agreement of each file with the Keras model it was
converted from.

The Keras row's size is the saved ``.keras`` file (without optimizer state); its latency is one
``tf.function`` call on a single example with TensorFlow's default thread pools (all cores), so
it is shown under the largest thread count only. TFLite latency is the median single-example
``invoke`` at 1 and 2 interpreter threads. The last line is JSON with ``rows``,
``keras_accuracy``, ``train_size`` and ``test_size``.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import gzip
import json
import time

import numpy as np
from absl import flags, logging

import keras_kd as kd
from examples import common_flags
from examples.models import make_student
from keras_kd import export, keras
from keras_kd._compat import tf

FLAGS = flags.FlagValues()
flags.DEFINE_integer(
    "fine_tune_epochs", 2, "Epochs of QAT and of pruning.", lower_bound=1, flag_values=FLAGS
)
flags.DEFINE_float("sparsity", 0.75, "Sparsity of the pruned row.", 0.0, 0.99, flag_values=FLAGS)
_THREADS = (1, 2)


def _compile(model, learning_rate):
    model.compile(
        keras.optimizers.Adam(learning_rate),
        kd.recipes.hard_loss(),
        metrics=["accuracy"],
    )
    return model


def _keras_row(model, path, x_test, y_test, runs):
    """The Keras float reference row: accuracy, .keras file size, tf.function latency."""
    plain = keras.models.clone_model(model)  # no optimizer state in the file
    plain.set_weights(model.get_weights())
    plain.save(path)
    with open(path, "rb") as f:
        content = f.read()
    predictions = model.predict(x_test, batch_size=512, verbose=0).argmax(axis=1)
    call = tf.function(lambda x: model(x, training=False))
    times = []
    for i in range(5 + runs):
        example = tf.constant(x_test[i % len(x_test)][None])
        start = time.perf_counter()
        call(example).numpy()
        if i >= 5:
            times.append(time.perf_counter() - start)
    return {
        "model": "keras_float",
        "accuracy": float(np.mean(predictions == y_test)),
        "agreement": 1.0,
        "bytes": len(content),
        "gzip_bytes": len(gzip.compress(content, compresslevel=9)),
        "arena_bytes": None,
        "latency_ms": {max(_THREADS): float(np.median(times) * 1000.0)},
    }


def _tflite_row(name, model, target, output_dir, x_train, x_test, y_test, runs):
    path = os.path.join(output_dir, f"{name}.tflite")
    logging.info("Exporting %s (target %s)", name, target)
    export.to_tflite(model, path, target=target, representative_data=x_train)
    report = export.verify(path, x_test, y_test, keras_model=model, runs=runs, threads=_THREADS)
    return {
        "model": name,
        **{k: report[k] for k in ("accuracy", "agreement", "bytes", "gzip_bytes")},
        "arena_bytes": report["arena_bytes"],
        "latency_ms": report["latency_ms"],
    }


def _compressed_rows(
    student, x, y, epochs, batch_size, sparsity, output_dir, x_test, y_test, runs, verbose=0
):
    """QAT-int8 and pruned+int8 rows, or [] when keras_kd.compress is not available."""
    try:
        from keras_kd import compress
    except ImportError:
        logging.warning("keras_kd.compress is not available: no QAT or pruned rows")
        return []
    qat = _compile(compress.quantize(student), 1e-4)
    qat.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=verbose)
    rows = [_tflite_row("qat_int8", qat, "int8", output_dir, x, x_test, y_test, runs)]
    pruned = _compile(compress.prune(student, sparsity, schedule="constant", frequency=20), 1e-3)
    pruned.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        verbose=verbose,
        callbacks=compress.training_callbacks(pruned),
    )
    stripped = compress.strip(pruned)
    logging.info("Pruned student: sparsity %s", compress.sparsity(stripped))
    rows.append(_tflite_row("pruned_int8", stripped, "int8", output_dir, x, x_test, y_test, runs))
    return rows


@common_flags.with_settings(
    "train_size seed student_width model unsafe_deserialization verbose",
    dataset="fashion_mnist",
    epochs=5,
    batch_size=128,
    runs=200,
    output_dir="keras_kd_runs/benchmark_export",
)
def run(s, fine_tune_epochs=2, sparsity=0.75):
    """Runs the benchmark; returns ``{"rows": [...], "keras_accuracy": ...}`` (see module doc).

    ``s`` holds the shared flags' values (``common_flags.with_settings``); the arguments are
    the script's flags (``--helpfull``).

    ``verbose`` is Keras ``fit``'s (0 silent, 1 progress bars, 2 a line per epoch).
    """
    (x, y), (x_test, y_test) = kd.data.load(s.dataset)
    if s.train_size:
        x, y = x[: s.train_size], y[: s.train_size]
    num_classes = int(max(y.max(), y_test.max())) + 1
    os.makedirs(s.output_dir, exist_ok=True)
    keras.utils.set_random_seed(s.seed)
    if s.model is None:
        student = _compile(make_student(x.shape[1:], num_classes, width=s.student_width), 3e-3)
        logging.info("Training the student on %d examples for %d epochs", len(x), s.epochs)
        student.fit(x, y, epochs=s.epochs, batch_size=s.batch_size, verbose=s.verbose)
    else:
        student = kd.load_model(s.model, unsafe=s.unsafe_deserialization)
    rows = [
        _keras_row(student, os.path.join(s.output_dir, "student.keras"), x_test, y_test, s.runs)
    ]
    for target in export.TARGETS:
        rows.append(
            _tflite_row(
                f"tflite_{target}", student, target, s.output_dir, x, x_test, y_test, s.runs
            )
        )
    rows += _compressed_rows(
        student,
        x,
        y,
        fine_tune_epochs,
        s.batch_size,
        sparsity,
        s.output_dir,
        x_test,
        y_test,
        s.runs,
        s.verbose,
    )
    return {
        "rows": rows,
        "keras_accuracy": rows[0]["accuracy"],
        "train_size": len(x),
        "test_size": len(x_test),
    }


def markdown_table(rows):
    """The rows as a markdown table (latency columns for 1 and 2 threads)."""
    lines = [
        "| model | accuracy | agreement | bytes | gzip bytes | arena bytes "
        "| ms, 1 thread | ms, 2 threads |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        latency = [row["latency_ms"].get(t) for t in _THREADS]
        cells = [
            row["model"],
            f"{row['accuracy']:.4f}",
            f"{row['agreement']:.4f}",
            f"{row['bytes']:,}",
            f"{row['gzip_bytes']:,}",
            "-" if row["arena_bytes"] is None else f"{row['arena_bytes']:,}",
            *("-" if ms is None else f"{ms:.3f}" for ms in latency),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


common_flags.define(FLAGS, run)


def main(argv):
    common_flags.reject_extra_arguments(argv)
    result = run(**common_flags.arguments(run, FLAGS))
    print(markdown_table(result["rows"]))
    print(json.dumps(result))


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
