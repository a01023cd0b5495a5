r"""The pipeline over several seeds: mean ± std of every candidate, from the runs' report.json files.

    for s in 0 1 2; do python -m examples.pipeline --seed=$s --output_dir=runs/seed_$s; done
    python -m examples.pipeline_seeds --reports=runs/seed_0/report.json,runs/seed_1/report.json,\
runs/seed_2/report.json

Prints one row per candidate and reference: the LiteRT accuracy's mean ± std over the runs, the
mean of its per-run differences from the scratch student and, for a compressed candidate
(``<base>+<recipe>``), from its uncompressed distilled student ``<base>``, the largest such drop
and how often it was chosen. The last line is one JSON object. It reads files only: no
TensorFlow runs.
"""

import os
import sys

if not __package__:  # python examples/<name>.py: import the package as `python -m` does
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import examples  # noqa: F401  (quiets TensorFlow before keras_kd imports it)

import json

import numpy as np
from absl import app, flags

from examples import common_flags

FLAGS = flags.FlagValues()
common_flags.define(FLAGS)
flags.DEFINE_list(
    "reports",
    [],
    "report.json files of examples.pipeline runs that differ only in --seed.",
    flag_values=FLAGS,
)
flags.register_validator(  # the form only: the files are read when the script runs
    "reports",
    lambda paths: all(p.endswith(".json") for p in paths),
    "--reports must be .json files",
    flag_values=FLAGS,
)


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"reports must be report.json files of examples.pipeline, received: reports={path!r} "
            f"({error})"
        ) from None
    if not isinstance(content, dict) or not {"candidates", "references"} <= set(content):
        raise ValueError(
            f"reports must be report.json files of examples.pipeline, received: reports={path!r} "
            "(no candidates or references)"
        )
    rows = {r["name"]: r for r in [*content["references"], *content["candidates"]]}
    return rows, content.get("chosen")


def _points(a, b):
    return 100 * (np.asarray(a) - np.asarray(b))


def summarize(paths):
    """Aggregates pipeline reports of several seeds.

    Args:
        paths: Paths of ``report.json`` files written by ``examples.pipeline``.

    Returns:
        A dict ``{"runs": n, "chosen": {name: times}, "chosen_vs_scratch_pt", "rows": {name:
        {"mean", "std", "runs", "vs_scratch_pt", "vs_base_pt", "worst_vs_base_pt"}}}``: accuracy
        is the exported file's in LiteRT; ``*_pt`` are per-run differences in points, averaged
        (``worst_vs_base_pt``: the lowest), ``None`` where they do not apply (no scratch row, not
        a compressed candidate, a run that chose nothing); a row is kept only if every report has
        it with a LiteRT accuracy, and ``"no_accuracy"`` lists those left out for want of one (an
        export that failed in some run).

    Raises:
        ValueError: If ``paths`` is empty, or a path is not a readable pipeline report.

    Example:
        >>> summarize(["s0/report.json", "s1/report.json", "s2/report.json"])["rows"]["kd"]
    """
    if not paths:
        raise ValueError("reports must name at least one report.json, received: reports=[]")
    loaded = [_load(path) for path in paths]
    everywhere = [n for n in loaded[0][0] if all(n in rows for rows, _ in loaded)]
    # A failed export (e.g. a teacher over the target's size) has no LiteRT accuracy to average.
    names = [
        n for n in everywhere if all(rows[n].get("accuracy") is not None for rows, _ in loaded)
    ]
    accuracy = {n: np.array([rows[n]["accuracy"] for rows, _ in loaded]) for n in names}
    result = {}
    for name in names:
        base = name.split("+", 1)[0] if "+" in name else None
        vs_base = _points(accuracy[name], accuracy[base]) if base in accuracy else None
        result[name] = {
            "mean": float(accuracy[name].mean()),
            "std": float(accuracy[name].std()),
            "runs": len(paths),
            "vs_scratch_pt": (
                float(_points(accuracy[name], accuracy["scratch"]).mean())
                if "scratch" in accuracy
                else None
            ),
            "vs_base_pt": None if vs_base is None else float(vs_base.mean()),
            "worst_vs_base_pt": None if vs_base is None else float(vs_base.min()),
        }
    chosen = [c for _, c in loaded]
    chosen_vs_scratch = None
    if "scratch" in accuracy and all(chosen):
        picked = np.array([rows[c]["accuracy"] for rows, c in loaded])
        chosen_vs_scratch = float(_points(picked, accuracy["scratch"]).mean())
    return {
        "runs": len(paths),
        "chosen": {c: chosen.count(c) for c in dict.fromkeys(chosen) if c},
        "chosen_vs_scratch_pt": chosen_vs_scratch,
        "rows": result,
        "no_accuracy": [n for n in everywhere if n not in result],
    }


def _cell(value):
    return "" if value is None else f"{value:+.2f}"


def table(summary):
    """The summary as text lines, a header and one row per candidate.

    Args:
        summary: What ``summarize`` returned.

    Returns:
        A list of strings: LiteRT accuracy as mean ± std, the gains in points, times chosen.

    Example:
        >>> print("\n".join(table(summarize(["s0/report.json", "s1/report.json"]))))
    """
    lines = [
        f"{'candidate':<16}{'LiteRT accuracy':>20}{'vs scratch':>12}{'vs base':>10}"
        f"{'worst vs base':>15}{'chosen':>8}",
        "-" * 81,
    ]
    for name, row in summary["rows"].items():
        lines.append(
            f"{name:<16}{row['mean']:>12.4f} ± {row['std']:.4f}{_cell(row['vs_scratch_pt']):>12}"
            f"{_cell(row['vs_base_pt']):>10}{_cell(row['worst_vs_base_pt']):>15}"
            f"{summary['chosen'].get(name, 0):>8}"
        )
    return lines


def main(argv):
    common_flags.reject_extra_arguments(argv)
    if not FLAGS.reports:
        raise app.UsageError("--reports is required: the pipeline runs' report.json files")
    try:
        summary = summarize(FLAGS.reports)
    except ValueError as error:
        raise app.UsageError(f"flag --reports: {error}") from None
    print(f"{summary['runs']} runs; points are means of per-run differences")
    print("\n".join(table(summary)))
    if summary["no_accuracy"]:
        print(
            f"no LiteRT accuracy in every run (export failed): {', '.join(summary['no_accuracy'])}"
        )
    if summary["chosen_vs_scratch_pt"] is not None:
        print(f"chosen candidates vs scratch: {summary['chosen_vs_scratch_pt']:+.2f} pt")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    common_flags.run_app(main, FLAGS)
