"""Tests of examples/tree.py: its run() results on digits and its command-line checks."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    done = subprocess.run(
        [sys.executable, "-m", "examples.tree", "--tree_depth=0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    # TensorFlow's C++ start-up lines may precede it; the usage error is the last line.
    assert done.stderr.strip().splitlines()[-1].startswith("tree.py: flag --tree_depth=0:")
