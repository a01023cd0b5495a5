"""Tests of examples/tree.py: its run() results on digits and its command-line checks."""

import json
import os

import numpy as np
import pytest

from tests.forked_script_runs import run_script


def test_tree_run_reports_both_trees_and_writes_the_pictures(tmp_path):
    from examples import tree

    result = tree.run(
        epochs=1,
        teacher_epochs=1,
        batch_size=64,
        teacher_width=4,
        train_size=300,
        depth=2,
        output_dir=str(tmp_path),
    )
    assert set(result) == {
        "teacher_acc",
        "hard_acc",
        "distilled_acc",
        "hard_max_path_acc",
        "distilled_max_path_acc",
        "teacher_params",
        "tree_params",
        "filters_png",
        "path_png",
        "tree_path",
    }
    assert all(0.0 <= result[k] <= 1.0 for k in result if k.endswith("_acc"))
    assert result["tree_params"] == 64 * 3 + 3 + 4 * 10
    for key in ("filters_png", "path_png", "tree_path"):
        assert result[key].startswith(str(tmp_path)) and os.path.getsize(result[key]) > 1000


def test_tree_command_line_rejects_a_bad_flag_with_one_line():
    done = run_script("examples.tree", ["--tree_depth=0"])
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    # TensorFlow's C++ start-up lines may precede it; the usage error is the last line.
    assert done.stderr.strip().splitlines()[-1].startswith("tree.py: flag --tree_depth=0:")


def test_summarize_and_format_table_give_mean_and_population_std_over_seeds():
    from examples import tree

    runs = [
        dict.fromkeys(tree.ACCURACIES, 0.5) | {"hard_acc": 0.90, "distilled_max_path_acc": 0.70},
        dict.fromkeys(tree.ACCURACIES, 0.5) | {"hard_acc": 0.80, "distilled_max_path_acc": 0.74},
        dict.fromkeys(tree.ACCURACIES, 0.5) | {"hard_acc": 0.85, "distilled_max_path_acc": 0.72},
    ]
    summary = tree.summarize(runs)
    assert summary["hard_acc"]["mean"] == pytest.approx(0.85)
    assert summary["hard_acc"]["std"] == pytest.approx((0.005 / 3) ** 0.5)  # np.std: ddof=0
    assert summary["distilled_max_path_acc"]["std"] == pytest.approx((0.0008 / 3) ** 0.5)
    assert summary["teacher_acc"] == {"mean": 0.5, "std": 0.0}
    table = tree.format_table(
        {"summary": summary, "depth": 8, "tree_params": 202735, "teacher_params": 421642}
    )
    assert table.splitlines() == [
        "| depth (parameters) | teacher (421,642 parameters) | tree on labels | tree distilled |",
        "| --- | --- | --- | --- |",
        "| 8 (202,735) | 0.500 ± 0.000 | 0.850 ± 0.041 (max path 0.500 ± 0.000) "
        "| 0.500 ± 0.000 (max path 0.720 ± 0.016) |",
    ]


def test_tree_command_line_with_seeds_prints_and_writes_the_mean_std_table(tmp_path):
    done = run_script(
        "examples.tree",
        [
            "--seeds=2",
            "--seed=3",
            "--tree_depth=2",
            "--epochs=1",
            "--teacher_epochs=1",
            "--teacher_width=4",
            "--train_size=200",
            "--batch_size=64",
            f"--output_dir={tmp_path}",
        ],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["seeds"] == [3, 4] and len(result["runs"]) == 2
    assert {os.path.basename(os.path.dirname(r["tree_path"])) for r in result["runs"]} == {
        "seed3",
        "seed4",
    }
    for key in ("hard_acc", "distilled_acc", "teacher_acc", "distilled_max_path_acc"):
        values = [r[key] for r in result["runs"]]
        assert result["summary"][key]["mean"] == pytest.approx(np.mean(values))
        assert result["summary"][key]["std"] == pytest.approx(np.std(values))
    hard = result["summary"]["hard_acc"]
    row = f"| 2 ({result['tree_params']:,}) | "
    assert [line for line in lines if line.startswith(row)] == [result["table"].splitlines()[-1]]
    assert f"{hard['mean']:.3f} ± {hard['std']:.3f}" in result["table"].splitlines()[-1]
    assert (tmp_path / "summary.md").read_text() == result["table"] + "\n"
