"""examples/pipeline.py: every artifact, the chosen candidate, skipping up-to-date stages."""

import copy
import functools
import glob
import json
import os
import re
import shutil
import time

import numpy as np
import pytest
from absl import flags

import keras_kd as kd
from examples import pipeline
from examples.pipeline_report import report_stage
from examples.pipeline_stages import StageRunner, save_json
from tests.forked_script_runs import run_script

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
    references = {r["name"]: r for r in content["references"]}
    assert 0 < rows["kd"]["macs"] == rows["kd+prune"]["macs"] < references["teacher"]["macs"]
    assert all(0 <= r["keras_accuracy"] <= 1 for r in [*rows.values(), *references.values()])
    assert result["summary"].startswith(f"Chosen {result['chosen']} (LiteRT accuracy")
    assert "vs the scratch student" in result["summary"] and "vs the teacher" in result["summary"]
    assert result["table"][0].split()[:3] == ["candidate", "accuracy", "Keras"]
    assert f"Chosen candidate: **{result['chosen']}**" in (run / "report.md").read_text()
    html = (run / "report.html").read_text()
    assert '<tr class="chosen"><td>' + result["chosen"] in html
    assert html.count("data:image/png;base64,") == 4
    for board in ("scratch", "kd", "kd_prune_0", "final"):
        assert glob.glob(
            str(output / "tb" / board / "**" / "events.out.tfevents.*"), recursive=True
        )


def test_students_distill_with_the_distillers_default_for_their_labels_per_class(first_run):
    output, _, _ = first_run
    runner = StageRunner(str(output / "run"))
    settings = runner.manifest("distill/kd")["settings"]
    (expected,), alpha = kd.losses.defaults(examples_per_class=TINY["train_size"] / 10)
    assert settings["dist"] == {"beta": 2.0, "gamma": 2.0, "temperature": 4.0}
    assert settings["dist"] == {k: getattr(expected, k) for k in ("beta", "gamma", "temperature")}
    assert settings["alpha"] == alpha == 0.5 and settings["temperature"] == 4.0


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


def test_a_cosine_schedule_retrains_the_scratch_and_distilled_students_alike(
    first_run, tmp_path, monkeypatch
):
    planned = []
    cosine_adam = kd.recipes.cosine_adam
    monkeypatch.setattr(
        kd.recipes, "cosine_adam", lambda *args: planned.append(args) or cosine_adam(*args)
    )
    result, _ = _rerun(first_run, tmp_path, student_schedule="cosine")
    trained = {s for s, status in result["stages"].items() if status == "ran"}
    assert {"scratch", "distill/kd", "compress/kd+prune"} <= trained
    assert not {"data", "teacher"} & trained
    # The scratch and the distilled student decay over their whole run, fine-tuning over its step.
    total = kd.recipes.steps(TINY["train_size"], TINY["epochs"], 64)
    step = kd.recipes.steps(TINY["train_size"], TINY["finetune_epochs"], 64)
    assert planned == [(3e-3, total)] * 2 + [(3e-3, step)]
    assert "with cosine decay" in (tmp_path / "run" / "report.md").read_text()
    with pytest.raises(ValueError, match="student_schedule must be one of"):
        pipeline.TrainingStages(None, 0, 64, 0, None, "dist", None, 0.5, student_schedule="step")


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


def test_stage_runner_announces_one_line_per_stage_with_its_seconds_and_key_figure(tmp_path):
    lines = []
    runner = StageRunner(str(tmp_path), announce=lines.append)

    def build():
        with open(runner.path("a.txt"), "w") as f:
            f.write("a")
        return {"accuracy": 0.98}

    for _ in range(2):
        runner.run("distill/kd", {"k": 1}, ["a.txt"], build, lambda i: f"acc {i['accuracy']}")
    assert re.fullmatch(r"\[ 1\] distill/kd +\d+\.\d s  acc 0.98", lines[0]), lines[0]
    assert re.fullmatch(r"\[ 2\] distill/kd +skipped  acc 0.98", lines[1]), lines[1]
    assert len(lines) == 2


def _row(name, accuracy, agreement=1.0, **extra):
    row = {"name": name, "accuracy": accuracy, "keras_accuracy": accuracy, "agreement": agreement}
    row.update(bytes=10_000, gzip_bytes=7_000, latency_ms=0.002, parameters=5_130, macs=83_264)
    return {**row, "sparsity": 0.0, "tflite": f"tflite/{name}.tflite", **extra}


def test_report_keeps_a_teacher_whose_export_failed_and_never_chooses_a_broken_export(tmp_path):
    runner = StageRunner(str(tmp_path), announce=lambda line: None)
    failed = {key: None for key in ("accuracy", "agreement", "bytes", "gzip_bytes", "latency_ms")}
    rows = {
        "teacher": {**_row("teacher", 0.98, parameters=878_730, macs=9_000_000), **failed},
        "scratch": _row("scratch", 0.96),
        "kd": _row("kd", 0.97),
        "kd+prune+qat": _row("kd+prune+qat", 0.99, agreement=0.558),
    }
    rows["teacher"].update(keras_accuracy=0.98, error="file over the size budget")
    for name in ("scratch", "kd", "kd+prune+qat"):
        save_json({"loss": [1.0, 0.5]}, runner.path(f"histories/{name}.json"))
    budget = {"max_bytes": 0, "max_latency_ms": 0.0, "min_accuracy": 0.0}
    result = report_stage(
        runner, rows, ["kd"], ["kd+prune+qat"], "watch", "digits", budget, 0.99, None, []
    )
    assert result["chosen"] == "kd"  # kd+prune+qat is more accurate but disagrees with Keras
    content = json.loads((tmp_path / "report.json").read_text())
    teacher = next(r for r in content["references"] if r["name"] == "teacher")
    assert teacher["keras_accuracy"] == 0.98 and teacher["macs"] == 9_000_000
    assert content["rejected"]["kd+prune+qat"] == [
        "agreement 0.5580 < min_agreement 0.99: broken export"
    ]
    assert "kd+prune+qat" not in content["front"]
    markdown = (tmp_path / "report.md").read_text()
    assert "BROKEN: agreement 0.5580 < min_agreement 0.99" in markdown
    assert "| teacher | - | 0.9800 |" in markdown and "export failed: file over" in markdown
    assert result["summary"] == (
        "Chosen kd (LiteRT accuracy 0.9700, 10,000 bytes, 83,264 MACs): +1.0 pt vs the scratch "
        "student (0.9600, 10,000 bytes: equal, 83,264 MACs: equal); -1.0 pt vs the teacher "
        "(Keras 0.9800, 878,730 parameters: 171.3x smaller, 9,000,000 MACs: 108.1x fewer)."
    )


def test_qat_ranges_start_at_the_float_models_activation_ranges(digits):
    from examples.models import make_student
    from keras_kd import compress, keras

    (x, _), _ = digits
    keras.utils.set_random_seed(0)
    model = make_student(x.shape[1:], 10, width=4)
    quantized = compress.calibrate_ranges(compress.quantize(model), model, x)
    logits = model.predict(x[:1024], verbose=0)
    ranges = {w.name.split(":")[0]: float(w.numpy()) for w in quantized.weights if w.shape == ()}
    assert ranges["quant_s_logits/post_activation_min"] == pytest.approx(min(0, logits.min()))
    assert ranges["quant_s_logits/post_activation_max"] == pytest.approx(logits.max())
    assert ranges["quant_s_block1/post_activation_min"] == 0.0  # ReLU output
    assert 0 < ranges["quant_s_block1/post_activation_max"] < 6  # not tfmot's initial 6


def _parsed(argv):
    values = copy.deepcopy(pipeline.FLAGS)
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
        kd.compress.parse_recipe(recipe)


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
        "--pipeline_student_schedule=linear",
    ],
)
def test_bad_flags_are_rejected(flag):
    with pytest.raises(flags.Error):
        _parsed([flag])


def _command_line(settings):
    """The flags of ``python -m examples.pipeline`` for keyword arguments of ``pipeline.run``.

    A ``run`` argument is the flag of its name, or of ``pipeline_`` + its name
    (``compression`` is ``--pipeline_compression``); lists are joined by commas.
    """
    argv = []
    for name, value in settings.items():
        own = f"pipeline_{name}"
        flag = own if own in pipeline.FLAGS else name
        assert flag in pipeline.FLAGS, f"run() argument {name} has no flag"
        if isinstance(value, (list, tuple)):
            value = ",".join(value)
        argv.append(f"--{flag}={value}")
    return argv


def test_no_candidate_inside_the_budget_exits_with_status_3(first_run, tmp_path):
    output, _, _ = first_run
    shutil.copytree(output / "run", tmp_path / "run")
    argv = _command_line({**TINY, "max_bytes": 1_000, "output_dir": str(tmp_path / "run")})
    done = run_script("examples.pipeline", argv, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == pipeline.NO_FIT_STATUS == 3, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["chosen"] is None and not result["fits_budget"]
    # The command line gives the settings of run(**TINY): only the report depends on max_bytes.
    assert {s for s, status in result["stages"].items() if status == "ran"} == {"report"}


def test_pipeline_force_flag_is_passed_to_run_as_force(first_run, tmp_path, monkeypatch):
    output, _, _ = first_run
    shutil.copytree(output / "run", tmp_path / "run")
    asked = {}
    real_run = pipeline.run

    @functools.wraps(real_run)  # main reads run's parameters to pick the flags it passes
    def recording_run(**kwargs):  # main's arguments, then a cheap real run (only the report)
        asked.update(kwargs)
        return real_run(**{**TINY, "max_bytes": 1_000, "output_dir": str(tmp_path / "run")})

    monkeypatch.setattr(pipeline, "run", recording_run)
    monkeypatch.setitem(vars(pipeline.FLAGS), "__flags_parsed", True)
    monkeypatch.setattr(pipeline.FLAGS["pipeline_force"], "value", True)
    assert pipeline.main(["pipeline"]) == pipeline.NO_FIT_STATUS
    assert asked["force"] is True


def test_forced_stage_runner_reruns_an_up_to_date_stage(tmp_path):
    calls = []

    def build():
        calls.append(len(calls))
        with open(os.path.join(tmp_path, "a.txt"), "w") as f:
            f.write("a")
        return {"n": len(calls)}

    for force in (False, False, True):
        runner = StageRunner(str(tmp_path), force=force, announce=lambda line: None)
        runner.run("s", {"k": 1}, ["a.txt"], build)
    assert calls == [0, 1] and runner.manifest("s")["info"] == {"n": 2}


class _Crash(Exception):
    pass


def test_a_killed_teacher_training_resumes_after_its_last_finished_epoch(tmp_path, monkeypatch):
    from examples import pipeline_training

    epochs_seen, weights, train_teacher = [], [], pipeline_training.train_teacher

    class Recorder(kd.keras.callbacks.Callback):
        def __init__(self, crash_after):
            super().__init__()
            self.crash_after = crash_after

        def on_epoch_begin(self, epoch, logs=None):
            epochs_seen.append(epoch)
            weights.append(self.model.get_weights())

        def on_epoch_end(self, epoch, logs=None):
            if epoch == self.crash_after:
                weights.append(self.model.get_weights())
                raise _Crash(epoch)

    def stages(crash_after):
        def crashing_train_teacher(*args, callbacks, **kwargs):
            recorder = Recorder(crash_after)
            return train_teacher(*args, callbacks=[*callbacks, recorder], **kwargs)

        monkeypatch.setattr(pipeline_training, "train_teacher", crashing_train_teacher)
        training = pipeline_training.TrainingStages(
            StageRunner(str(tmp_path), announce=lambda line: None), 0, 64, 0, None, "dist", 4.0, 0.5
        )
        training.data("digits", 200)
        return training

    architecture = dict(augment=True, batch_norm=True, convs_per_block=2)
    with pytest.raises(_Crash):
        stages(crash_after=1).teacher(None, 4, 4, 1e-3, **architecture)
    assert epochs_seen == [0, 1] and glob.glob(str(tmp_path / "backup" / "teacher-*"))
    epochs_seen.clear()
    training = stages(crash_after=None)
    training.teacher(None, 4, 4, 1e-3, **architecture)
    assert epochs_seen == [2, 3]
    crashed, resumed = weights[2], weights[3]
    assert all(np.array_equal(a, b) for a, b in zip(crashed, resumed, strict=True))
    assert not glob.glob(str(tmp_path / "backup" / "teacher-*" / "*"))
    settings = training.runner.manifest("teacher")["settings"]
    assert settings["convs_per_block"] == 2 and settings["augment"] and settings["batch_norm"]
    names = [layer.name for layer in training.models["teacher"].layers]
    assert {"t_block1_1", "t_block1", "t_block2_1", "t_block2"} <= set(names)
