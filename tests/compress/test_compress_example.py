"""Tests of examples/compress.py: its run() report, its argument checks and its command line."""

import os

import numpy as np
import pytest
from absl import app, flags

from tests.forked_script_runs import run_script


def test_compress_run_reports_a_smaller_student(tmp_path):
    from examples import compress as example

    report = example.run(
        methods=["units", "cluster"],
        train_size=128,
        epochs=1,
        finetune_epochs=1,
        teacher_epochs=1,
        teacher_width=4,
        student_width=8,
        clusters=4,
        output_dir=str(tmp_path),
        tflite=False,
    )
    small, full = report["compressed"], report["float"]
    assert small["name"] == "units_cluster"
    assert small["parameters"] < full["parameters"]
    assert small["gzip_h5_bytes"] < full["gzip_h5_bytes"]
    assert small["latency_ms_batch1"] > 0 and small["keras_speedup_batch256"] > 0
    assert os.path.isfile(small["path"])


@pytest.mark.parametrize("methods", [[], ["prune", "zip"], ["prune", "prune"]])
def test_compress_run_rejects_bad_methods_before_training(methods, tmp_path):
    from examples import compress as example

    with pytest.raises(ValueError, match="methods must be distinct names from"):
        example.run(methods=methods, output_dir=str(tmp_path))


@pytest.mark.parametrize(
    "name, value", [("target_sparsity", "1.5"), ("clusters", "1"), ("finetune_epochs", "0")]
)
def test_compress_flags_enforce_their_bounds(name, value):
    from examples import compress as example

    with pytest.raises(flags.IllegalFlagValueError):
        example.FLAGS[name].parse(value)


def test_compress_main_rejects_extra_arguments():
    from examples import compress as example

    with pytest.raises(app.UsageError, match="unexpected arguments"):
        example.main(["compress", "extra"])


def test_compress_command_line_rejects_unknown_methods_without_a_traceback():
    done = run_script("examples.compress", ["--compression=prune,zip"])
    assert done.returncode != 0
    assert "--compression must be a comma list" in done.stderr and "Traceback" not in done.stderr


def test_benchmark_compress_rows_are_distilled_and_on_labels(tmp_path):
    from examples import benchmark_compress

    report = benchmark_compress.run(
        train_size=128,
        epochs=1,
        finetune_epochs=1,
        teacher_epochs=1,
        teacher_width=4,
        student_width=8,
        rows=["float", "unit-pruned 50%"],
        output_dir=str(tmp_path),
        tflite=False,
    )
    assert [(r["row"], r["distilled"]) for r in report["rows"]] == [
        ("float", True),
        ("unit-pruned 50%", True),
        ("float", False),
        ("unit-pruned 50%", False),
    ]
    assert report["rows"][1]["parameters"] < report["rows"][0]["parameters"]
    table = benchmark_compress.markdown_table(report).splitlines()
    assert table[2].startswith("| float | ") and table[3].startswith("| unit-pruned 50% | ")
    with pytest.raises(ValueError, match="rows must be labels of ROWS"):
        benchmark_compress.run(rows=["pruned 99%"], output_dir=str(tmp_path / "refused"))
    assert not (tmp_path / "refused").exists()


def test_measure_converts_through_keras_kd_export_int8_for_qat(tmp_path, student):
    from examples.compress_measure import measure
    from keras_kd import compress

    (tmp_path / "float").mkdir()
    x = np.random.default_rng(0).random((300, 8, 8, 1)).astype("float32")
    y = np.arange(300) % 10
    plain = measure(student, "float", x, y, str(tmp_path / "float"))
    qat = measure(compress.quantize(student), "qat", x, y, str(tmp_path))
    for result, directory in ((plain, tmp_path / "float"), (qat, tmp_path)):
        flat = directory / f"{result['name']}.tflite"
        assert result["tflite_bytes"] == flat.stat().st_size > 0
    assert qat["tflite_bytes"] < plain["tflite_bytes"]  # int8 weights (a float file is larger)
    assert qat["parameters"] == plain["parameters"]
