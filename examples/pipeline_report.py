"""The last stages of examples/pipeline.py: strip, export, verify each model; the report."""

import contextlib
import json
import os
import sys
import tempfile

import numpy as np

from examples.pipeline_stages import save_json
from keras_kd import compress, export, keras, load_model, report, resilience, students

_LITERT_INFO = "INFO: Created TensorFlow Lite XNNPACK delegate"
_TFLITE_KEYS = ("accuracy", "agreement", "bytes", "gzip_bytes", "latency_ms")
# The terminal table: fewer columns than the report's.
_SHORT_COLUMNS = ("name", "accuracy", "keras_accuracy", "agreement", "bytes", "macs", "sparsity")


def count_macs(model):
    """MACs of one example through ``model``, looking through QAT wrappers (same layer shapes)."""
    if not compress.is_quantized(model):
        return students.count_macs(model)
    import tensorflow_model_optimization as tfmot

    def plain(layer):
        inner = (
            layer.layer if isinstance(layer, tfmot.quantization.keras.QuantizeWrapper) else layer
        )
        return inner.__class__.from_config(inner.get_config())

    with tfmot.quantization.keras.quantize_scope():
        return students.count_macs(keras.models.clone_model(model, clone_function=plain))


@contextlib.contextmanager
def _quiet_litert(verbose):
    """Drops the interpreter's "INFO: Created TensorFlow Lite XNNPACK delegate" line below 2."""
    if verbose >= 2:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines = sink.read().decode("utf-8", "replace").splitlines(True)
            sys.stderr.write("".join(s for s in lines if not s.startswith(_LITERT_INFO)))


def deploy(runner, name, source, upstream, target, arrays, runs):
    """Strip, export and verify stages of one model; returns its report row.

    The row holds the Keras model's accuracy, parameters, MACs and sparsity (from the strip
    stage) even when the export fails (``"error"``), so a reference row never goes missing.
    """
    x, _, x_test, y_test = arrays
    stripped_path = f"stripped/{name}.h5"

    def strip_stage():
        model = compress.strip(load_model(source))
        resilience.save_model_atomically(model, runner.path(stripped_path))
        logits = model.predict(x_test, batch_size=512, verbose=0)
        return {
            "keras_accuracy": float(np.mean(logits.argmax(axis=1) == y_test)),
            "parameters": int(compress.float_params(model)),
            "macs": int(count_macs(model)),
            "sparsity": round(compress.sparsity(model)["total"], 4),
            "quantized": bool(compress.is_quantized(model)),
        }

    def strip_figure(info):
        return f"{info['parameters']:,} parameters, {info['macs']:,} MACs"

    settings = {"model": runner.fingerprint(upstream), "columns": 2}
    stripped = runner.run(f"strip/{name}", settings, [stripped_path], strip_stage, strip_figure)
    tflite = f"tflite/{name}.{target}.tflite"

    def export_stage():
        export.to_tflite(
            load_model(runner.path(stripped_path)),
            runner.path(tflite),
            target=target,
            representative_data=x,
        )
        return {"target": target, "bytes": os.path.getsize(runner.path(tflite))}

    keys = ("keras_accuracy", "parameters", "macs", "sparsity")
    row = {"name": name, **{k: stripped[k] for k in keys}}
    try:
        runner.run(
            f"export/{name}",
            {"model": runner.fingerprint(f"strip/{name}"), "target": target},
            [tflite],
            export_stage,
            lambda info: f"{info['bytes']:,} bytes",
        )
    except export.ExportError as error:
        runner.announce(f"     export/{name} failed: {' '.join(str(error).split())[:120]}")
        return {**row, **dict.fromkeys(_TFLITE_KEYS), "error": str(error)}
    verified = f"verify/{name}.{target}.json"

    def verify_stage():
        keras_model = load_model(runner.path(stripped_path))
        with _quiet_litert(runner.verbose):
            result = export.verify(
                runner.path(tflite), x_test, y_test, keras_model, runs=runs, threads=(1,)
            )
        result["latency_ms"] = result["latency_ms"][1]
        save_json(result, runner.path(verified))
        return result

    def verify_figure(info):
        return f"LiteRT accuracy {info['accuracy']:.4f}, agreement {info['agreement']:.4f}"

    checks = {"tflite": runner.fingerprint(f"export/{name}"), "runs": runs, "test": len(y_test)}
    result = runner.run(f"verify/{name}", checks, [verified], verify_stage, verify_figure)
    return {**row, **{k: result[k] for k in _TFLITE_KEYS}, "tflite": tflite}


def _load_histories(runner, names):
    histories = {}
    for name in names:
        with open(runner.path(f"histories/{name}.json"), encoding="utf-8") as f:
            history = json.load(f)
        if history:
            histories[name] = history
    return histories


def _ratio(value, other, fewer="fewer", more="more"):
    """``"6.3x fewer"``-style comparison of ``value`` with ``other``; ``"n/a"`` when unknown."""
    if not value or not other:
        return "n/a"
    if value == other:
        return "equal"
    if value < other:
        return f"{other / value:.1f}x {fewer}"
    return f"{value / other:.2f}x {more}"


def summary_line(chosen, scratch, teacher):
    """One sentence: the chosen candidate against the scratch student and the teacher.

    Accuracy in points of LiteRT accuracy (Keras accuracy for a reference whose export failed),
    size in .tflite bytes (parameters when a reference has no file), compute in MACs.

    Args:
        chosen: The chosen candidate's row, or ``None``.
        scratch: The scratch student's row.
        teacher: The teacher's row.

    Returns:
        A string.

    Example:
        >>> summary_line(rows["kd+qat"], rows["scratch"], rows["teacher"])
    """
    if chosen is None:
        return "No candidate fits the budget."
    parts = []
    for label, other in (("the scratch student", scratch), ("the teacher", teacher)):
        accuracy, source = other.get("accuracy"), ""
        if accuracy is None:
            accuracy, source = other.get("keras_accuracy"), "Keras "
        size = "bytes" if other.get("bytes") is not None else "parameters"
        parts.append(
            f"{100 * (chosen['accuracy'] - accuracy):+.1f} pt vs {label} ({source}{accuracy:.4f}"
            f", {other.get(size) or 0:,} {size}: "
            f"{_ratio(chosen.get(size), other.get(size), 'smaller', 'larger')}, "
            f"{other.get('macs') or 0:,} MACs: {_ratio(chosen.get('macs'), other.get('macs'))})"
        )
    return (
        f"Chosen {chosen['name']} (LiteRT accuracy {chosen['accuracy']:.4f}, "
        f"{chosen['bytes']:,} bytes, {chosen.get('macs') or 0:,} MACs): " + "; ".join(parts) + "."
    )


def report_stage(
    runner, rows, distilled, compressed, target, dataset, budget, min_agreement, board, facts
):
    """Chooses inside the budget and writes report.md, report.html, report.json and the PNGs.

    Candidates whose file agrees with its Keras model on less than ``min_agreement`` of the test
    split are flagged broken and cannot be chosen; those whose export failed are listed with the
    error. The teacher and scratch rows stay as references either way.
    """
    everyone = [rows[n] for n in [*distilled, *compressed]]
    candidates = [r for r in everyone if "error" not in r]
    references = [rows["teacher"], rows["scratch"]]
    names = ["report.md", "report.html", "report.json"]
    figures = [
        ("Accuracy vs model size (.tflite bytes)", "figures/accuracy_vs_size.png"),
        ("Accuracy vs download size (gzip -9 of the .tflite)", "figures/accuracy_vs_gzip.png"),
        ("Accuracy vs latency (one example, one thread)", "figures/accuracy_vs_latency.png"),
        ("Training curves: every loss term and metric per student", "figures/training_curves.png",
         True),
    ]  # fmt: skip
    choice = {**budget, "min_agreement": min_agreement}

    def build():
        chosen, rejected = report.choose(candidates, **choice) if candidates else (None, {})
        for row in everyone:
            if "error" in row:
                rejected[row["name"]] = [f"export failed: {' '.join(row['error'].split())}"]
        chosen_name = chosen["name"] if chosen else None
        broken = {n for n, why in rejected.items() if any("broken" in w for w in why)}
        sound = [r for r in candidates if r["name"] not in broken]
        shown = []
        if candidates:
            plotted = [r for r in references if "error" not in r]
            for (_, path, *_), key in zip(figures, ("bytes", "gzip_bytes", "latency_ms")):
                report.plot_tradeoff(candidates, runner.path(path), key, plotted, chosen_name)
            shown += figures[:3]
        histories = _load_histories(runner, ["scratch", *distilled, *compressed])
        if histories:
            report.plot_training_curves(histories, runner.path(figures[3][1]))
            shown.append(figures[3])
        limits = ", ".join(f"{k}={v}" for k, v in budget.items() if v) or "none"
        summary = summary_line(chosen, rows["scratch"], rows["teacher"])
        notes = [
            "Accuracy: the exported .tflite in LiteRT on the test split; Keras accuracy: the "
            "stripped Keras model on the same split; agreement: top-1 agreement of the two (a "
            f"candidate below {min_agreement:g} is a broken export and is not chosen); latency: "
            "median of single-example invokes on one thread, on the machine that ran it.",
            "The choice uses the same test split it reports, so with many candidates the chosen "
            "accuracy is slightly optimistic.",
        ]
        content = {
            "title": f"keras_kd pipeline report: {dataset} -> {target}",
            "facts": [("dataset", dataset), ("target", target), ("budget", limits),
                      ("candidates", len(everyone)), *facts],
            "candidates": everyone,
            "references": references,
            "chosen": chosen_name,
            "rejected": rejected,
            "front": [c["name"] for c in report.pareto_front(sound)] if sound else [],
            "figures": shown,
            "notes": notes,
            "summary": summary,
        }  # fmt: skip
        report.write_markdown(content, runner.path("report.md"))
        report.write_html(content, runner.path("report.html"))
        save_json(content, runner.path("report.json"))
        if board:
            scalars = {
                f"final/{r['name']}/{k}": r.get(k)
                for r in candidates + references
                for k in _TFLITE_KEYS
                if r.get(k) is not None
            }
            report.write_scalars(os.path.join(board, "final"), scalars)
        return {
            "chosen": chosen_name,
            "rejected": rejected,
            "summary": summary,
            "table": report.text_table(content, _SHORT_COLUMNS),
            "extra_artifacts": [figure[1] for figure in shown],
        }

    settings = {"rows": dict(sorted(rows.items())), "budget": choice, "target": target}
    settings.update(figures=figures, facts=facts, version=2)
    info = runner.run("report", settings, names, build, lambda i: f"chosen {i['chosen']}")
    chosen_row = dict(rows[info["chosen"]]) if info["chosen"] else None
    if chosen_row:
        chosen_row["tflite"] = os.path.abspath(runner.path(chosen_row["tflite"]))
    return {
        "chosen": info["chosen"],
        "chosen_row": chosen_row,
        "fits_budget": info["chosen"] is not None,
        "budget": budget,
        "summary": info["summary"],
        "table": info["table"],
        "report_md": os.path.abspath(runner.path("report.md")),
        "report_html": os.path.abspath(runner.path("report.html")),
        "report_json": os.path.abspath(runner.path("report.json")),
        "stages": {stage: status for stage, status, _ in runner.log},
    }
