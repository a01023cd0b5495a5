"""The example scripts: their run() functions and their command lines."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_distill_run_returns_every_result(tmp_path):
    from examples import distill

    result = distill.run(epochs=2, teacher_epochs=2, output_dir=str(tmp_path))
    assert set(result) == {"teacher_acc", "scratch_acc", "distilled_acc", "teacher_params", "student_params", "student_path"}
    assert result["student_params"] * 10 < result["teacher_params"]
    assert os.path.isfile(result["student_path"])
    assert 0.0 <= result["distilled_acc"] <= 1.0


def _run_script(module, *flags):
    return subprocess.run(
        [sys.executable, "-m", module, *flags], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_distill_command_line_ends_with_json(tmp_path):
    done = _run_script("examples.distill", "--epochs=1", "--teacher_epochs=1", "--verbose=0", f"--output_dir={tmp_path}")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["student_path"].startswith(str(tmp_path))


@pytest.mark.parametrize("flag", ["--epochs=0", "--alpha=2", "--verbose=5", "--dataset=cifar", "extra_argument"])
def test_distill_rejects_bad_flags_without_training(flag):
    done = _run_script("examples.distill", flag)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
