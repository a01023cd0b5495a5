"""examples/export.py: run() returns the verification report; the command line ends with JSON."""

import json
import os

import pytest

from tests.forked_script_runs import run_script


@pytest.fixture(scope="module")
def student_path(export_student, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "student.keras"
    export_student.save(path)
    return str(path)


def test_export_run_writes_the_watch_files_and_returns_the_report(student_path, tmp_path):
    from examples import export as export_example

    report = export_example.run(student_path, target="watch", output_dir=str(tmp_path), runs=3)
    assert report["target"] == "watch"
    assert report["agreement"] >= 0.98
    assert report["input_dtype"] == report["output_dtype"] == "int8"
    for key in ("tflite_path", "c_source", "c_header"):
        assert os.path.isfile(report[key])
    with open(tmp_path / "report_watch.json") as f:
        assert json.load(f)["bytes"] == os.path.getsize(report["tflite_path"])


def _run_script(*flags):
    return run_script("examples.export", flags)


def test_export_command_line_ends_with_json(student_path, tmp_path):
    done = _run_script(
        f"--model={student_path}", "--target=float", "--runs=2", f"--output_dir={tmp_path}"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["target"] == "float" and report["agreement"] == 1.0
    assert report["tflite_path"].startswith(str(tmp_path))


def test_export_rejects_a_missing_model_file_without_converting(tmp_path):
    done = _run_script("--model=/no/such.keras", "--target=watch", f"--output_dir={tmp_path}")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert not os.listdir(tmp_path)
