"""Tests of examples/benchmark_schemes.py, run as a command (it defines absl flags at import)."""

import json

import pytest

from tests.forked_script_runs import run_script


def _run(*flags):
    return run_script("examples.benchmark_schemes", flags)


def test_benchmark_schemes_prints_a_table_then_json_with_mean_and_std_per_row():
    done = _run(
        "--dataset=digits",
        "--train_size=64",
        "--epochs=1",
        "--teacher_epochs=1",
        "--seeds=1",
        "--rows=kd",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result["rows"]) == {"teacher", "scratch", "kd"}
    for stats in result["rows"].values():
        assert len(stats["runs"]) == 1 and 0.0 <= stats["runs"][0] <= 1.0
        assert stats["mean"] == pytest.approx(stats["runs"][0]) and stats["std"] == 0.0
    assert lines[0].startswith("| model | student epochs |") and lines[-2].startswith("| kd | 1 |")
    assert "beats scratch at an equal budget" in lines[0]
    # Rows of students are compared with the scratch student at their own total budget.
    kd_row = result["rows"]["kd"]
    assert kd_row["student_epochs"] == [1]
    assert kd_row["scratch_same_epochs"] == result["rows"]["scratch"]["runs"]


def test_benchmark_schemes_table_says_whether_each_row_beats_scratch_at_its_budget():
    # In a child process, as the script's import sets absl flag defaults.
    program = """
import json
from examples.benchmark_schemes import markdown

def row(runs, epochs, same):
    return {"mean": sum(runs) / len(runs), "std": 0.0, "runs": runs, "student_epochs": epochs,
            "scratch_same_epochs": same}

print(markdown({"epochs": 3, "rows": {
    "born_again": row([0.5, 0.6], [9, 9], [0.7, 0.5]),
    "label_refinery": row([0.8, 0.9], [6, 9], [0.7, 0.8]),
    "teacher_assistant": row([0.1, 0.2], [6, 6], [0.7, 0.8]),
}}))
"""
    done = run_script({"code": program})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()[-5:]
    assert lines[2].startswith(
        "| born_again | 9 | 0.5500 ± 0.0000 | 0.6000 ± 0.1000 | mixed (1 of 2"
    )
    assert lines[3].startswith("| label_refinery | 6/9 |") and "| yes (2 of 2 seeds) |" in lines[3]
    assert lines[4].endswith("| no (0 of 2 seeds) |")


def test_benchmark_schemes_rejects_unknown_rows_without_training():
    done = _run("--rows=dropout")
    assert done.returncode != 0 and "Traceback" not in done.stderr
