"""The example scripts: their run() functions and their command lines."""

import glob
import importlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.forked_script_runs import run_forked, run_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_distill_run_returns_every_result(tmp_path):
    from examples import distill

    result = distill.run(epochs=2, teacher_epochs=2, output_dir=str(tmp_path))
    assert set(result) == {
        "teacher_acc",
        "scratch_acc",
        "distilled_acc",
        "teacher_params",
        "student_params",
        "student_path",
    }
    assert result["student_params"] * 10 < result["teacher_params"]
    assert os.path.isfile(result["student_path"])
    assert 0.0 <= result["distilled_acc"] <= 1.0


DISTILL_BAD_FLAGS = [
    "--epochs=0",
    "--alpha=2",
    "--verbose=5",
    "--dataset=cifar",
    "--method=magic",
    "--pairs=a:b,c",
    "extra_argument",
]


@pytest.fixture(scope="module")
def distill_exits():
    """``python -m examples.distill`` with ``--help`` and with each bad flag (one forked run each)."""
    runs = [("distill", ["--help"])] + [("distill", [flag]) for flag in DISTILL_BAD_FLAGS]
    results = run_forked(runs)
    return {args[0]: result for (_, args), result in zip(runs, results)}


@pytest.mark.parametrize("flag", DISTILL_BAD_FLAGS)
def test_distill_rejects_bad_flags_without_training(distill_exits, flag):
    returncode, _, stderr = distill_exits[flag]
    assert returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr


def test_transfer_run_reports_every_row(tmp_path):
    from examples import transfer

    result = transfer.run(
        regime="mnist1d",
        seeds=1,
        epochs=1,
        teacher_epochs=1,
        transfer_size=200,
        output_dir=str(tmp_path),
    )
    assert set(result["rows"]) == {
        "scratch (labeled only)",
        "distilled (labeled only)",
        "distilled + transfer set",
    }
    assert result["labeled"] == 4000 and result["unlabeled"] == 200
    assert all(0.0 <= acc[0] <= 1.0 for acc in result["rows"].values())
    assert "| distilled + transfer set |" in transfer.markdown(result)


def test_mnist1d_transfer_set_is_new_inputs_of_the_right_size():
    from examples.transfer import mnist1d_transfer_set
    from keras_kd import data

    extra = mnist1d_transfer_set(300)
    (x, _), _ = data.load("mnist1d")
    assert extra.shape == (300, 40, 1)
    assert not any(np.allclose(extra[0], row) for row in x[:1000])


def test_every_example_imports_and_parses_its_flags_without_fashion_mnist(tmp_path, monkeypatch):
    """Each script declares its flags in its own FlagValues (``FLAGS``), so importing them all into
    one process raises no DuplicateFlagError; and no script reads the dataset's directory when it
    is imported or its flags are parsed."""
    import copy

    from absl import flags

    import keras_kd as kd

    missing = tmp_path / "no_fashion_mnist"
    monkeypatch.setenv("KERAS_KD_FASHION_MNIST", str(missing))
    paths = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
    assert len(paths) > 10
    modules = {}
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        modules[name] = importlib.import_module(
            "examples" if name == "__init__" else f"examples.{name}"
        )
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        own = getattr(modules[name], "FLAGS", None)
        values = copy.deepcopy(own if isinstance(own, flags.FlagValues) else flags.FLAGS)
        values.unparse_flags()
        values([path])
        if "dataset" in values:
            assert kd.data.is_valid_name(values.dataset), (name, values.dataset)
        with open(path, encoding="utf-8") as f:
            assert "idx:/usr/share" not in f.read(), f"{name} names the machine's dataset path"
    assert not missing.exists()


_LOG_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ |WARNING: All log messages before absl)")


def _default_env():
    """This environment without a log level of its own: the scripts' defaults apply."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def test_a_benchmark_without_fashion_mnist_exits_2_with_one_line(tmp_path):
    missing, output_dir = tmp_path / "no_fashion_mnist", tmp_path / "out"
    done = run_script(
        "examples.benchmark",
        ["--seeds=1", f"--output_dir={output_dir}"],
        env={"TF_CPP_MIN_LOG_LEVEL": None, "KERAS_KD_FASHION_MNIST": missing},
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines  # and no log line: the default verbosity is quiet
    assert lines[0].startswith("benchmark.py: ")
    for part in (
        repr(str(missing)),
        "KERAS_KD_FASHION_MNIST",
        "apt-get install dataset-fashion-mnist",
    ):
        assert part in lines[0], lines[0]
    assert not output_dir.exists()  # it failed before training or writing anything


def test_an_example_runs_as_a_file_quietly_with_the_same_flags(tmp_path):
    """``python examples/distill.py`` (no package on the path) works like ``python -m``, and at the
    default --verbose=0 prints a short account: no TensorFlow or absl log lines."""
    done = subprocess.run(
        [
            sys.executable,
            os.path.join("examples", "distill.py"),
            "--epochs=1",
            "--teacher_epochs=1",
            f"--output_dir={tmp_path}",
        ],
        cwd=ROOT,
        env={k: v for k, v in _default_env().items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["student_path"].startswith(str(tmp_path))
    assert len(done.stdout.splitlines()) + len(done.stderr.splitlines()) < 60
    assert not any(_LOG_LINE.match(line) for line in done.stderr.splitlines()), done.stderr


def test_an_example_runs_as_a_module_with_the_same_flags(distill_exits):
    _, stdout, stderr = distill_exits["--help"]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "--method" in stdout and "--scheme" in stdout  # absl's --help exits 1


def test_methods_are_the_loss_registry_names_but_the_multi_teacher_loss():
    import keras_kd as kd
    from examples.methods import METHODS

    assert sorted(METHODS) == [name for name in kd.losses.names() if name != "multi_kd"]


@pytest.mark.parametrize(
    "method", ["kd", "dkd", "dist", "fitnet", "at", "fsp", "nst", "rkd", "sp", "pkt", "cc"]
)
def test_every_method_builds_a_distiller_for_the_example_models(method):
    import keras_kd as kd
    from examples.methods import make_losses
    from examples.models import make_student, make_teacher

    width = 16 if method == "fsp" else 64  # FSP matrices need equal channel counts
    teacher, student = make_teacher((8, 8, 1), 10, width=width), make_student((8, 8, 1), 10)
    distiller = kd.Distiller(student, teacher, **make_losses(method, temperature=4.0, alpha=0.1))
    assert (
        distiller.distillation_losses[-1].name == kd.losses.get(method, **_method_args(method)).name
    )


def _method_args(method):
    if method == "fsp":
        return {"flows": [(("t_pool1", "t_block2"), ("s_pool1", "s_block2"))]}
    return {"pairs": [("t_block2", "s_block2")]} if method in ("fitnet", "at", "nst") else {}


@pytest.mark.parametrize(
    "flags", [["--method=at"], ["--scheme=born_again"], ["--scheme=multi_teacher"]]
)
def test_distill_runs_methods_and_schemes_from_its_flags(tmp_path, capsys, flags):
    """``main`` on parsed flags, in process (the command line's own path is tested above)."""
    from examples import distill

    argv = distill.FLAGS(
        ["distill", "--epochs=1", "--teacher_epochs=1", f"--output_dir={tmp_path}", *flags]
    )
    try:
        distill.main(argv)
    finally:
        distill.FLAGS.unparse_flags()
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= result["distilled_acc"] <= 1.0 and os.path.isfile(result["student_path"])
    assert result["student_path"].startswith(str(tmp_path))


def test_parse_pairs_refuses_malformed_items():
    from examples.methods import parse_pairs

    assert parse_pairs("a:b,c:d") == [("a", "b"), ("c", "d")]
    with pytest.raises(ValueError, match="teacher_layer:student_layer"):
        parse_pairs("a:b,c")


def test_benchmark_run_writes_the_table(tmp_path):
    from examples import benchmark

    result = benchmark.run(
        dataset="digits",
        train_size=256,
        epochs=1,
        teacher_epochs=1,
        seeds=1,
        method_names=["kd", "at"],
        output_dir=str(tmp_path),
    )
    assert set(result["rows"]) == {"scratch", "kd", "at"}
    assert all(len(row["accuracy"]) == 1 for row in result["rows"].values())
    table = (tmp_path / "benchmark.md").read_text()
    assert "| at |" in table and "beats scratch" in table
    assert json.loads((tmp_path / "benchmark.json").read_text())["train_size"] == 256


@pytest.mark.parametrize("scheme", ["none", "multi_teacher", "magic"])
def test_train_with_scheme_refuses_schemes_it_cannot_run(scheme):
    from examples.methods import train_with_scheme

    with pytest.raises(ValueError, match=f"received: scheme='{scheme}'"):
        train_with_scheme(scheme, None, None, None, 1, 32, 1e-3, 4.0, 0.1)


def test_make_teacher_stacks_convolutions_per_block_and_refuses_other_counts():
    from examples.models import make_teacher

    deep = make_teacher((28, 28, 1), 10, width=32, batch_norm=True, convs_per_block=2)
    convs = [layer.name for layer in deep.layers if type(layer).__name__ == "Conv2D"]
    assert convs == ["t_block1_1_conv", "t_block1_conv", "t_block2_1_conv", "t_block2_conv"]
    assert deep.get_layer("t_block2_conv").filters == 64
    with pytest.raises(
        ValueError, match="convs_per_block must be 1, 2 or 3, received: convs_per_block=4"
    ):
        make_teacher((28, 28, 1), 10, convs_per_block=4)


def test_deep_cnn_student_is_the_deep_teacher_at_its_width_with_student_layer_names():
    import keras_kd as kd
    from examples.methods import make_losses
    from examples.models import STUDENTS, make_deep_cnn, make_teacher

    student = make_deep_cnn((28, 28, 1), 10)
    assert STUDENTS["deep_cnn"] is make_deep_cnn and student.name == "deep_cnn"
    teacher = make_teacher((28, 28, 1), 10, width=4, batch_norm=True, convs_per_block=2)
    assert kd.students.count_macs(student) == kd.students.count_macs(teacher) == 361_920
    assert student.count_params() == teacher.count_params()
    convs = [layer.name for layer in student.layers if type(layer).__name__ == "Conv2D"]
    assert convs == ["s_block1_1_conv", "s_block1_conv", "s_block2_1_conv", "s_block2_conv"]
    assert student.get_layer("s_block2").output.shape[-1] == 8
    distiller = kd.Distiller(student, teacher, **make_losses("at", 4.0, 0.5))
    distiller.compile("adam", kd.recipes.hard_loss())
    x = np.zeros((4, 28, 28, 1), "float32")
    assert np.all(np.isfinite(distiller.train_on_batch(x, np.zeros(4, int))))  # AT finds them
