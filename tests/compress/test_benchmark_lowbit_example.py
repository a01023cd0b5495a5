"""Tests of examples/benchmark_lowbit.py: its table, its argument checks and its command line."""

import copy
import json

import pytest
from absl import app, flags


def test_benchmark_lowbit_run_writes_a_table_of_smaller_binary_students(tmp_path):
    from examples import benchmark_lowbit

    result = benchmark_lowbit.run(
        dataset="digits",
        train_size=128,
        epochs=1,
        teacher_epochs=1,
        teacher_width=4,
        modes=("binary",),
        hidden=16,
        tflite=False,
        output_dir=str(tmp_path),
    )
    assert [(row["mode"], row["training"]) for row in result["rows"]] == [
        ("binary", "labels"),
        ("binary", "distilled"),
    ]
    for row in result["rows"]:
        assert 0 <= row["accuracy"] <= 1
        assert row["packed_bytes"] < row["float32_bytes"] / 4
    table = (tmp_path / "lowbit.md").read_text()
    assert table.splitlines()[2].startswith("| binary |")
    assert json.loads((tmp_path / "lowbit.json").read_text())["train_size"] == 128


@pytest.mark.parametrize("modes", [(), ("float", "int3"), ("binary", "binary")])
def test_benchmark_lowbit_run_rejects_bad_modes_before_training(modes, tmp_path):
    from examples import benchmark_lowbit

    with pytest.raises(ValueError, match="modes must be distinct names from"):
        benchmark_lowbit.run(modes=modes, output_dir=str(tmp_path))


@pytest.mark.parametrize(
    "arg", ["--lowbit_modes=float,int3", "--lowbit_modes=", "--lowbit_hidden=0"]
)
def test_benchmark_lowbit_flags_enforce_their_bounds(arg):
    from examples import benchmark_lowbit

    name = arg[2:].split("=")[0]
    with pytest.raises(flags.Error, match=name):
        copy.deepcopy(benchmark_lowbit.FLAGS)(["prog", arg])


def test_benchmark_lowbit_main_rejects_extra_arguments():
    from examples import benchmark_lowbit

    with pytest.raises(app.UsageError, match="unexpected arguments"):
        benchmark_lowbit.main(["benchmark_lowbit", "extra"])
