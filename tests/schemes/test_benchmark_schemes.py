"""Tests of examples/benchmark_schemes.py, run as a command (it defines absl flags at import)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*flags):
    return subprocess.run(
        [sys.executable, "-m", "examples.benchmark_schemes", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


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


def test_benchmark_schemes_rejects_unknown_rows_without_training():
    done = _run("--rows=dropout")
    assert done.returncode != 0 and "Traceback" not in done.stderr
