"""examples/pipeline_seeds.py: the pipeline's candidates over seeds, from report.json files."""

import json

import pytest

from examples import pipeline_seeds
from tests.forked_script_runs import run_script


def _report(path, accuracies, chosen):
    rows = [{"name": n, "accuracy": a} for n, a in accuracies.items()]
    content = {"references": rows[:2], "candidates": rows[2:], "chosen": chosen}
    path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


@pytest.fixture
def reports(tmp_path):
    runs = [
        ({"teacher": 0.98, "scratch": 0.90, "kd": 0.96, "kd+prune": 0.95, "lone": 0.5}, "kd"),
        ({"teacher": 0.96, "scratch": 0.94, "kd": 0.98, "kd+prune": 0.98}, "kd+prune"),
    ]
    return [_report(tmp_path / f"s{i}.json", a, c) for i, (a, c) in enumerate(runs)]


def test_summary_is_mean_std_and_mean_of_per_run_differences(reports):
    summary = pipeline_seeds.summarize(reports)
    assert summary["runs"] == 2 and summary["chosen"] == {"kd": 1, "kd+prune": 1}
    assert summary["no_accuracy"] == []
    assert "lone" not in summary["rows"]  # only in one report
    kd, pruned = summary["rows"]["kd"], summary["rows"]["kd+prune"]
    assert kd["mean"] == pytest.approx(0.97) and kd["std"] == pytest.approx(0.01)
    assert kd["vs_scratch_pt"] == pytest.approx(5.0) and kd["vs_base_pt"] is None
    assert pruned["vs_base_pt"] == pytest.approx(-0.5)  # -1.0 and 0.0
    assert pruned["worst_vs_base_pt"] == pytest.approx(-1.0)
    assert summary["chosen_vs_scratch_pt"] == pytest.approx(5.0)  # 0.96 - 0.90, 0.98 - 0.94
    lines = pipeline_seeds.table(summary)
    assert lines[0].split()[0] == "candidate" and len(lines) == 2 + 4


def test_a_row_whose_export_failed_in_a_run_is_listed_not_averaged(reports, tmp_path):
    failed = _report(tmp_path / "f.json", {"teacher": None, "scratch": 0.9, "kd": 0.95}, "kd")
    summary = pipeline_seeds.summarize([*reports, failed])
    assert "teacher" not in summary["rows"] and summary["no_accuracy"] == ["teacher"]
    assert summary["rows"]["kd"]["mean"] == pytest.approx((0.96 + 0.98 + 0.95) / 3)


def test_a_run_that_chose_nothing_leaves_the_chosen_gain_unset(reports, tmp_path):
    empty = _report(tmp_path / "none.json", {"teacher": 0.9, "scratch": 0.8, "kd": 0.85}, None)
    assert pipeline_seeds.summarize([*reports, empty])["chosen_vs_scratch_pt"] is None


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"candidates": []}'])
def test_a_file_that_is_not_a_report_is_refused_naming_it(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"reports must be report.json files .* received: reports="
    ):
        pipeline_seeds.summarize([str(path)])
    with pytest.raises(ValueError, match=r"received: reports=\[\]"):
        pipeline_seeds.summarize([])


def test_command_line_prints_the_table_then_json_and_exits_2_on_a_missing_file(reports):
    done = run_script("examples.pipeline_seeds", [f"--reports={','.join(reports)}"])
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["rows"]["kd+prune"]["vs_base_pt"] == pytest.approx(-0.5)
    assert "chosen candidates vs scratch: +5.00 pt" in done.stdout
    missing = run_script("examples.pipeline_seeds", ["--reports=/no/such/report.json"])
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    last_line = missing.stderr.strip().splitlines()[-1]
    assert "flag --reports: reports must be report.json files" in last_line
    assert "received: reports='/no/such/report.json'" in last_line
    nothing = run_script("examples.pipeline_seeds", [])
    assert nothing.returncode == 2 and "--reports is required" in nothing.stderr
