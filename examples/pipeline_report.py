"""The last stages of examples/pipeline.py: strip, export, verify each model; the report."""

import os

from examples import compress_recipes
from examples.pipeline_stages import save_json, save_model
from keras_kd import compress, export, keras, report


def load_model(path):
    """Loads a Keras model saved with or without tfmot wrappers (pruning, clustering, QAT)."""
    import tensorflow_model_optimization as tfmot

    with (
        tfmot.sparsity.keras.prune_scope(),
        tfmot.clustering.keras.cluster_scope(),
        tfmot.quantization.keras.quantize_scope(),
    ):
        return keras.models.load_model(path, compile=False)


def deploy(runner, name, source, upstream, target, x, x_test, y_test, runs):
    """Strip, export and verify stages of one model; returns its report row (or an error row)."""
    stripped_path = f"stripped/{name}.h5"

    def strip_stage():
        model = compress.strip(load_model(source))
        save_model(model, runner.path(stripped_path))
        return {
            "parameters": int(compress_recipes.float_params(model)),
            "sparsity": round(compress.sparsity(model)["total"], 4),
            "quantized": bool(compress.is_quantized(model)),
        }

    stripped = runner.run(
        f"strip/{name}", {"model": runner.fingerprint(upstream)}, [stripped_path], strip_stage
    )
    tflite = f"tflite/{name}.{target}.tflite"

    def export_stage():
        export.to_tflite(
            load_model(runner.path(stripped_path)),
            runner.path(tflite),
            target=target,
            representative_data=x,
        )
        return {"target": target}

    row = {"name": name, "parameters": stripped["parameters"], "sparsity": stripped["sparsity"]}
    try:
        runner.run(
            f"export/{name}",
            {"model": runner.fingerprint(f"strip/{name}"), "target": target},
            [tflite],
            export_stage,
        )
    except export.ExportError as error:
        return {**row, "error": str(error)}
    verified = f"verify/{name}.{target}.json"

    def verify_stage():
        result = export.verify(
            runner.path(tflite),
            x_test,
            y_test,
            keras_model=load_model(runner.path(stripped_path)),
            runs=runs,
            threads=(1,),
        )
        result["latency_ms"] = result["latency_ms"][1]
        save_json(result, runner.path(verified))
        return result

    checks = {"tflite": runner.fingerprint(f"export/{name}"), "runs": runs, "test": len(y_test)}
    result = runner.run(f"verify/{name}", checks, [verified], verify_stage)
    keys = ("accuracy", "agreement", "bytes", "gzip_bytes", "latency_ms")
    return {**row, **{k: result[k] for k in keys}, "tflite": tflite}


def _load_histories(runner, names):
    import json

    histories = {}
    for name in names:
        with open(runner.path(f"histories/{name}.json"), encoding="utf-8") as f:
            history = json.load(f)
        if history:
            histories[name] = history
    return histories


def report_stage(
    runner,
    rows,
    distilled,
    compressed,
    target,
    dataset,
    max_bytes,
    max_latency_ms,
    min_accuracy,
    tensorboard_dir,
):
    """Chooses inside the budget and writes report.md, report.html, report.json and the PNGs."""
    failed = {n: r["error"] for n, r in rows.items() if "error" in r}
    candidates = [rows[n] for n in [*distilled, *compressed] if n not in failed]
    references = [rows[n] for n in ("teacher", "scratch") if n not in failed]
    names = ["report.md", "report.html", "report.json"]
    figures = [
        ("Accuracy vs model size (.tflite bytes)", "figures/accuracy_vs_size.png"),
        ("Accuracy vs download size (gzip -9 of the .tflite)", "figures/accuracy_vs_gzip.png"),
        ("Accuracy vs latency (one example, one thread)", "figures/accuracy_vs_latency.png"),
        (
            "Training curves: every loss term and metric per student",
            "figures/training_curves.png",
            True,
        ),
    ]
    budget = {
        "max_bytes": max_bytes,
        "max_latency_ms": max_latency_ms,
        "min_accuracy": min_accuracy,
    }

    def build():
        chosen, rejected = report.choose(candidates, **budget) if candidates else (None, {})
        chosen_name = chosen["name"] if chosen else None
        front = report.pareto_front(candidates) if candidates else []
        shown = []
        if candidates:
            report.plot_tradeoff(
                candidates, runner.path(figures[0][1]), "bytes", references, chosen_name
            )
            report.plot_tradeoff(
                candidates, runner.path(figures[1][1]), "gzip_bytes", references, chosen_name
            )
            report.plot_tradeoff(
                candidates, runner.path(figures[2][1]), "latency_ms", references, chosen_name
            )
            shown += figures[:3]
        histories = _load_histories(runner, ["scratch", *distilled, *compressed])
        if histories:
            report.plot_training_curves(histories, runner.path(figures[3][1]))
            shown.append(figures[3])
        limits = ", ".join(f"{k}={v}" for k, v in budget.items() if v) or "none"
        notes = [
            "Accuracy: the exported .tflite in LiteRT on the test split; agreement: top-1 "
            "agreement with its own Keras model; latency: median of single-example invokes on "
            "one thread, on the machine that ran the pipeline.",
            "The choice uses the same test split it reports, so with many candidates the chosen "
            "accuracy is slightly optimistic.",
        ]
        scratch = rows.get("scratch", {})
        if chosen and scratch.get("accuracy") is not None:
            delta = 100 * (chosen["accuracy"] - scratch["accuracy"])
            notes.append(
                f"The chosen candidate is {delta:+.1f} points from the scratch student "
                f"({scratch['accuracy']:.4f}), trained for the same epochs without a teacher."
            )
        notes += [f"{n}: export failed: {e}" for n, e in failed.items()]
        content = {
            "title": f"keras_kd pipeline report: {dataset} -> {target}",
            "facts": [
                ("dataset", dataset),
                ("target", target),
                ("budget", limits),
                ("candidates", len(candidates)),
            ],
            "candidates": candidates,
            "references": references,
            "chosen": chosen_name,
            "rejected": rejected,
            "front": [c["name"] for c in front],
            "figures": shown,
            "notes": notes,
        }
        report.write_markdown(content, runner.path("report.md"))
        report.write_html(content, runner.path("report.html"))
        save_json(content, runner.path("report.json"))
        if tensorboard_dir:
            scalars = {
                f"final/{r['name']}/{k}": r.get(k)
                for r in candidates + references
                for k in ("accuracy", "agreement", "bytes", "gzip_bytes", "latency_ms")
            }
            report.write_scalars(os.path.join(tensorboard_dir, "final"), scalars)
        return {
            "chosen": chosen_name,
            "rejected": rejected,
            "extra_artifacts": [figure[1] for figure in shown],
        }

    inputs = {n: r for n, r in sorted(rows.items())}
    settings = {"rows": inputs, "budget": budget, "target": target, "figures": figures}
    info = runner.run("report", settings, names, build)
    chosen_row = dict(rows[info["chosen"]]) if info["chosen"] else None
    if chosen_row:
        chosen_row["tflite"] = os.path.abspath(runner.path(chosen_row["tflite"]))
    return {
        "chosen": info["chosen"],
        "chosen_row": chosen_row,
        "fits_budget": info["chosen"] is not None,
        "budget": budget,
        "report_md": os.path.abspath(runner.path("report.md")),
        "report_html": os.path.abspath(runner.path("report.html")),
        "report_json": os.path.abspath(runner.path("report.json")),
        "stages": {stage: status for stage, status, _ in runner.log},
    }
