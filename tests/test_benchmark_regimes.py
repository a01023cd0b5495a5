"""The regimes benchmark: same initial weights per row, resumable results, an honest table."""

import json

import numpy as np
import pytest

from examples import benchmark_regimes as bench


@pytest.fixture
def tiny_suite(monkeypatch):
    monkeypatch.setitem(bench.REGIMES, "tiny_digits", ("digits", ("mlp32",), 64, 300, 1))
    monkeypatch.setitem(bench.TEACHER_EPOCHS, "digits", 1)
    return "tiny_digits"


def test_rows_start_from_the_same_weights_and_results_resume(tiny_suite, tmp_path):
    methods = ("scratch", "default", "hinton")
    first = bench.run_regime(tiny_suite, methods, seeds=2, output_dir=str(tmp_path))
    assert set(first["rows"]) == {f"mlp32/{m}" for m in methods}
    assert all(set(cells) == {"0", "1"} for cells in first["rows"].values())
    # default and hinton differ only in the loss, so after one epoch from the same start they are
    # close to each other and to scratch, but not equal (the loss matters).
    accuracies = {k: v["0"]["accuracy"] for k, v in first["rows"].items()}
    assert len(set(accuracies.values())) > 1
    saved = json.loads((tmp_path / f"{tiny_suite}.json").read_text())
    assert saved["rows"] == first["rows"]
    again = bench.run_regime(tiny_suite, methods, seeds=2, output_dir=str(tmp_path))
    assert again["rows"] == first["rows"]  # nothing retrained: seconds and curves unchanged


def test_summary_reports_mean_std_and_paired_gain():
    result = {
        "regime": "r",
        "teacher": {"accuracy": 0.9, "macs": 10},
        "rows": {
            "s/scratch": {"0": {"accuracy": 0.80}, "1": {"accuracy": 0.90}},
            "s/default": {"0": {"accuracy": 0.82}, "1": {"accuracy": 0.93}},
        },
    }
    table, summary = bench.summarize([result])
    assert summary["r/s/default"]["mean"] == pytest.approx(0.875)
    assert summary["r/s/default"]["std"] == pytest.approx(np.std([0.82, 0.93]))
    assert summary["r/s/default"]["gain_pt"] == pytest.approx(2.5)
    assert "| r | s | default | 0.8750 ± 0.0550 | +2.50 | 2 |" in table


def test_suite_is_fixed():
    assert bench.SUITE == (
        "fashion_5k_30",
        "fashion_5k_150",
        "fashion_60k_6",
        "fashion_60k_40",
        "mnist1d_mlp",
        "digits_main_job",
    )
    assert bench.REGIMES["fashion_5k_30"][1:] == (("cnn", "mlp"), 128, 5000, 30)
    assert 80_000 < bench.count_macs(bench.make_small_cnn((28, 28, 1), 10)) < 120_000


def test_patient_row_replays_views_and_runs_only_in_long_regimes(tiny_suite, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "LONG_REGIMES", (tiny_suite,))
    monkeypatch.setattr(bench, "PATIENT_VIEWS", 2)
    built = []
    original = bench.recipes.patient_distiller

    def spy(*args, **kwargs):
        built.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(bench.recipes, "patient_distiller", spy)
    result = bench.run_regime(tiny_suite, ("scratch", "patient"), seeds=1, output_dir=str(tmp_path))
    assert built == [{"replay_views": 2, "replay_seed": 0}]
    assert 0.0 < result["rows"]["mlp32/patient"]["0"]["accuracy"] <= 1.0
    monkeypatch.setattr(bench, "LONG_REGIMES", ())
    (tmp_path / "short").mkdir()
    short = bench.run_regime(tiny_suite, ("patient",), seeds=1, output_dir=str(tmp_path / "short"))
    assert set(short["rows"]) == {"mlp32/scratch"}


def test_saving_keeps_the_runs_another_process_saved_meanwhile(tmp_path):
    path = str(tmp_path / "r.json")
    cell = {"accuracy": 0.8}
    bench._save({"rows": {"cnn/scratch": {"0": cell}}, "students": {"cnn": {"macs": 1}}}, path)
    bench._save({"rows": {"mlp/scratch": {"0": cell}, "cnn/scratch": {"1": cell}}}, path)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["rows"] == {"cnn/scratch": {"0": cell, "1": cell}, "mlp/scratch": {"0": cell}}
    assert saved["students"] == {"cnn": {"macs": 1}}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left
