"""Tests of examples/dynamic.py: its run() report on digits and its command-line checks."""

import os

import pytest
from absl import app


def test_dynamic_run_reports_exits_widths_and_sweeps(tmp_path):
    from examples import dynamic

    thresholds = [0.0, 0.9, 1.01]
    report = dynamic.run(
        train_size=256,
        epochs=1,
        teacher_epochs=1,
        teacher_width=4,
        student_width=4,
        thresholds=thresholds,
        widths=[0.5, 1.0],
        export_tflite=False,
        output_dir=str(tmp_path),
    )
    assert [row["stage"] for row in report["exits"]] == [
        "exit 0 (d_block1)",
        "exit 1 (d_block2)",
        "exit 2 (output)",
    ]
    assert [row["width"] for row in report["widths"]] == [0.5, 1.0]
    assert report["widths"][0]["params"] < report["widths"][1]["params"]
    for sweep in ("exit_thresholds", "width_thresholds"):
        assert [p["threshold"] for p in report[sweep]] == thresholds
        macs = [p["average_macs"] for p in report[sweep]]
        assert macs[0] <= macs[1] <= macs[2]
        assert report[sweep][0]["stage_fractions"][0] == 1.0
    assert os.path.getsize(report["plot"]) > 1000 and report["tflite"] is None


def test_dynamic_run_rejects_an_unknown_exit_layer_before_training(tmp_path):
    from examples import dynamic

    with pytest.raises(ValueError, match="unknown 'nope'"):
        dynamic.run(exit_layers=["nope"], output_dir=str(tmp_path))


def test_dynamic_main_rejects_extra_arguments():
    from examples import dynamic

    with pytest.raises(app.UsageError, match="unexpected arguments"):
        dynamic.main(["dynamic", "extra"])


@pytest.mark.parametrize(
    "check, values, valid",
    [
        ("valid_widths", ["0.25", "1"], True),
        ("valid_widths", ["0.25", "0.5"], False),
        ("valid_widths", ["0", "1"], False),
        ("valid_widths", ["half", "1"], False),
        ("valid_thresholds", ["0", "0.9", "1.01"], True),
        ("valid_thresholds", ["-0.1"], False),
        ("valid_thresholds", [], False),
    ],
)
def test_dynamic_flag_validators(check, values, valid):
    from examples import dynamic

    assert getattr(dynamic, check)(values) is valid
