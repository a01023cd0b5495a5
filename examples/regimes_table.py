"""The table of ``examples/benchmark_regimes.py``: mean ± std over seeds and the paired gain."""

import numpy as np

ROW_ORDER = (
    "scratch",
    "default",
    "hinton",
    "kd_t2",
    "kd_std",
    "dkd",
    "dist",
    "dist_kd",
    "dist_t4",
    "dist_a01",
    "dist_t2",
    "dist_t8",
    "dist_t4_a03",
    "patient",
)


def _row_order(item):
    kind, method = item[0].split("/")
    return kind, ROW_ORDER.index(method) if method in ROW_ORDER else len(ROW_ORDER)


def summarize(results):
    """Markdown table of every regime: mean ± std of last-epoch accuracy, and the gain on scratch.

    Args:
        results: The regimes' result dicts as ``benchmark_regimes.run_regime`` saves them.

    Returns:
        ``(table, summary)``: the markdown text, and ``{"<regime>/<student>/<row>": {"mean",
        "std", "gain_pt", "seeds"}}`` where ``gain_pt`` is the mean of per-seed differences from
        scratch, in points. A row that reused another's result is labelled ``row (= other)``.

    Example:
        >>> table, summary = summarize([json.load(open("fashion_5k_30.json"))])
    """
    lines = [
        "| regime | student | row | accuracy (mean ± std) | vs scratch (pt) | seeds |",
        "|---|---|---|---|---|---|",
    ]
    summary = {}
    for result in results:
        scratch = {}
        for key, cells in result["rows"].items():
            kind, method = key.split("/")
            accuracies = np.array([cells[s]["accuracy"] for s in sorted(cells)])
            if method == "scratch":
                scratch[kind] = accuracies
        for key, cells in sorted(result["rows"].items(), key=_row_order):
            kind, method = key.split("/")
            accuracies = np.array([cells[s]["accuracy"] for s in sorted(cells)])
            base = scratch.get(kind)
            n = min(len(accuracies), len(base)) if base is not None else 0
            gain = 100 * float(np.mean(accuracies[:n] - base[:n])) if n else float("nan")
            summary[f"{result['regime']}/{key}"] = {
                "mean": float(accuracies.mean()),
                "std": float(accuracies.std()),
                "gain_pt": gain,
                "seeds": len(accuracies),
            }
            twins = {cell.get("same_as") for cell in cells.values()} - {None}
            label = f"{method} (= {twins.pop()})" if len(twins) == 1 else method
            lines.append(
                f"| {result['regime']} | {kind} | {label} | {accuracies.mean():.4f} ± "
                f"{accuracies.std():.4f} | {gain:+.2f} | {len(accuracies)} |"
            )
        teacher = result["teacher"]
        lines.append(
            f"| {result['regime']} | teacher | ({teacher['macs']:,} MACs) | "
            f"{teacher['accuracy']:.4f} | | |"
        )
    return "\n".join(lines), summary
