"""examples/pipeline.py: every artifact, the chosen candidate, skipping up-to-date stages."""

import copy
import glob
import json
import os
import shutil
import time

import pytest
from absl import flags

from examples import pipeline
from examples.pipeline_stages import StageRunner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(
    train_size=400,
    teacher_epochs=2,
    epochs=2,
    finetune_epochs=1,
    teacher_width=8,
    student_width=4,
    pipeline_methods=("kd",),
    compression=("prune",),
    target="float",
    runs=3,
    max_bytes=50_000,
)
MODELS = ("teacher", "scratch", "kd", "kd+prune")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("pipeline")
    start = time.perf_counter()
    result = pipeline.run(
        output_dir=str(output / "run"), tensorboard_dir=str(output / "tb"), **TINY
    )
    return output, result, time.perf_counter() - start


def _rerun(first_run, tmp_path, **changes):
    output, _, _ = first_run
    shutil.copytree(output / "run", tmp_path / "run")
    start = time.perf_counter()
    result = pipeline.run(output_dir=str(tmp_path / "run"), **{**TINY, **changes})
    return result, time.perf_counter() - start


def test_pipeline_writes_every_artifact_and_chooses_inside_the_budget(first_run):
    output, result, _ = first_run
    run = output / "run"
    expected = ["data.npz", "models/teacher.keras", "report.md", "report.html", "report.json"]
    expected += [f"models/{m}.h5" for m in MODELS[1:]]
    expected += [f"histories/{m}.json" for m in MODELS[1:]]
    expected += [f"stripped/{m}.h5" for m in MODELS]
    expected += [f"tflite/{m}.float.tflite" for m in MODELS]
    expected += [f"verify/{m}.float.json" for m in MODELS]
    expected += [
        f"figures/{f}.png"
        for f in ("accuracy_vs_size", "accuracy_vs_gzip", "accuracy_vs_latency", "training_curves")
    ]
    assert [f for f in expected if not (run / f).is_file()] == []
    assert set(result["stages"].values()) == {"ran"}

    content = json.loads((run / "report.json").read_text())
    rows = {r["name"]: r for r in content["candidates"]}
    assert set(rows) == {"kd", "kd+prune"}
    assert {r["name"] for r in content["references"]} == {"teacher", "scratch"}
    chosen = rows[result["chosen"]]
    assert chosen["bytes"] <= TINY["max_bytes"] and result["fits_budget"]
    assert chosen["accuracy"] == max(r["accuracy"] for r in rows.values())
    assert rows["kd+prune"]["sparsity"] > 0.3 and rows["kd"]["sparsity"] < 0.1
    assert f"Chosen candidate: **{result['chosen']}**" in (run / "report.md").read_text()
    html = (run / "report.html").read_text()
    assert '<tr class="chosen"><td>' + result["chosen"] in html
    assert html.count("data:image/png;base64,") == 4
    for board in ("scratch", "kd", "kd_prune_0", "final"):
        assert glob.glob(
            str(output / "tb" / board / "**" / "events.out.tfevents.*"), recursive=True
        )


def test_rerun_skips_every_finished_stage(first_run, tmp_path):
    _, _, first_seconds = first_run
    before = os.path.getmtime(first_run[0] / "run" / "models" / "kd.h5")
    result, seconds = _rerun(first_run, tmp_path)
    assert set(result["stages"].values()) == {"skipped"}
    assert os.path.getmtime(tmp_path / "run" / "models" / "kd.h5") == pytest.approx(before)
    assert seconds < first_seconds / 3


@pytest.mark.parametrize(
    "changes, reran",
    [
        (
            {"runs": 2},
            {"verify/teacher", "verify/scratch", "verify/kd", "verify/kd+prune", "report"},
        ),
        ({"max_bytes": 1_000}, {"report"}),
    ],
)
def test_changing_a_flag_reruns_only_the_stages_that_depend_on_it(
    first_run, tmp_path, changes, reran
):
    result, _ = _rerun(first_run, tmp_path, **changes)
    assert {s for s, status in result["stages"].items() if status == "ran"} == reran
    if "max_bytes" in changes:
        assert result["chosen"] is None and not result["fits_budget"]
        assert "No candidate fits the budget." in (tmp_path / "run" / "report.md").read_text()


def test_stage_runner_reruns_a_stage_whose_artifact_changed_or_whose_build_crashed(tmp_path):
    runner = StageRunner(str(tmp_path), announce=lambda line: None)
    calls = []

    def build(text="a"):
        calls.append(text)
        with open(runner.path("out/a.txt"), "w") as f:
            f.write(text)
        return {"n": len(calls)}

    assert runner.run("s", {"k": 1}, ["out/a.txt"], build) == {"n": 1}
    assert runner.run("s", {"k": 1}, ["out/a.txt"], build) == {"n": 1}  # skipped
    (tmp_path / "out" / "a.txt").write_text("tampered")
    assert runner.run("s", {"k": 1}, ["out/a.txt"], build) == {"n": 2}

    def crash():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run("s", {"k": 2}, ["out/a.txt"], crash)
    assert runner.manifest("s")["settings"] == {"k": 1}  # the last finished run's manifest
    assert [status for _, status, _ in runner.log] == ["ran", "skipped", "ran"]


def _parsed(argv):
    values = copy.deepcopy(flags.FLAGS)
    values.unparse_flags()
    values(["pipeline", *argv])
    return values


@pytest.mark.parametrize("config", ["phone", "watch"])
def test_checked_in_configs_parse_into_valid_flags(config):
    path = os.path.join(ROOT, "examples", "configs", f"{config}.cfg")
    values = _parsed([f"--flagfile={path}"])
    assert values.pipeline_target == config
    assert values.max_bytes > 0
    for recipe in values.pipeline_compression:
        pipeline.parse_recipe(recipe)


@pytest.mark.parametrize(
    "flag",
    [
        "--pipeline_methods=kd,magic",
        "--pipeline_compression=prune+magic",
        "--pipeline_compression=prune+prune",
        "--pipeline_schemes=multi_teacher",
        "--pipeline_target=toaster",
        "--min_accuracy=1.5",
        "--max_bytes=-1",
    ],
)
def test_bad_flags_are_rejected(flag):
    with pytest.raises(flags.Error):
        _parsed([flag])
