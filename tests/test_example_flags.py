"""Every example script refuses a bad flag with exit status 2 and one line, never a traceback.

Scripts are discovered by glob, so new examples are covered without editing this file. Each runs
once as ``-m`` would run it, in a child forked by ``tests.forked_script_runs`` after one import of
TensorFlow (which dominates); the validators are also checked in-process, where they are cheap, on
a copy of the flags of a script that declares the flag (each script declares its own, in its
``FLAGS``).
"""

import copy
import glob
import importlib
import os
import re

import pytest
from absl import app, flags
from absl.testing import flagsaver

from tests.forked_script_runs import run_forked, run_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_SCRIPTS = {"__init__", "common_flags", "models", "methods"}
ALL_MODULES = sorted(
    os.path.splitext(os.path.basename(path))[0]
    for path in glob.glob(os.path.join(ROOT, "examples", "*.py"))
    if os.path.splitext(os.path.basename(path))[0] not in NOT_SCRIPTS
)


def _is_script(name):
    with open(os.path.join(ROOT, "examples", f"{name}.py"), encoding="utf-8") as f:
        return 'if __name__ == "__main__":' in f.read()


SCRIPTS = [name for name in ALL_MODULES if _is_script(name)]
LIBRARIES = [name for name in ALL_MODULES if not _is_script(name)]

# A script-specific bad flag where the script has an enum or a validator of its own; other scripts
# get an out-of-range shared flag.
BAD_FLAG = {
    "benchmark": ("--methods=magic", "methods"),
    "benchmark_export": ("--sparsity=1.5", "sparsity"),
    "benchmark_lowbit": ("--lowbit_modes=magic", "lowbit_modes"),
    "benchmark_schemes": ("--rows=magic", "rows"),
    "benchmark_speed": ("--mode=fast", "mode"),
    "benchmark_determinism": ("--epochs=1", "epochs"),
    "compress": ("--compression=magic", "compression"),
    "distill": ("--method=magic", "method"),
    "export": ("--target=toaster", "target"),
    "pipeline": ("--pipeline_target=toaster", "pipeline_target"),
    "pipeline_seeds": ("--reports=report.txt", "reports"),
    "tree": ("--tree_depth=0", "tree_depth"),
    "transfer": ("--regime=cifar", "regime"),
}
DEFAULT_BAD_FLAG = ("--epochs=-1", "epochs")
_LOG_LINE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)")


@pytest.fixture(scope="module")
def bad_flag_runs():
    """{script: (returncode, stderr)} of each script run with its bad flag."""
    # Fashion-MNIST pointed at a missing directory: importing and parsing must not need it.
    missing = os.path.join(ROOT, "no_such_fashion_mnist_dir")
    runs = [(name, [BAD_FLAG.get(name, DEFAULT_BAD_FLAG)[0]]) for name in SCRIPTS]
    results = run_forked(runs, {"KERAS_KD_FASHION_MNIST": missing})
    return {name: (status, stderr) for name, (status, _, stderr) in zip(SCRIPTS, results)}


def _message_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip() and not _LOG_LINE.match(line)]


@pytest.mark.parametrize("name", SCRIPTS)
def test_bad_flag_exits_2_with_one_line_naming_the_flag(bad_flag_runs, name):
    returncode, stderr = bad_flag_runs[name]
    flag = BAD_FLAG.get(name, DEFAULT_BAD_FLAG)[1]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert returncode == 2, stderr[-3000:]
    lines = _message_lines(stderr)
    assert len(lines) == 1, lines
    assert f"--{flag}" in lines[0] or f"'{flag}'" in lines[0], lines[0]


def test_modules_without_a_main_are_libraries_of_the_examples():
    # A script that forgot its __main__ block would be missed above; these are imported helpers.
    for name in LIBRARIES:
        with open(os.path.join(ROOT, "examples", f"{name}.py"), encoding="utf-8") as f:
            assert "def main(" not in f.read(), f"examples/{name}.py has main() but no __main__"


@pytest.fixture(scope="module")
def script_modules():
    return {name: importlib.import_module(f"examples.{name}") for name in SCRIPTS}


def _own_flags(module):
    """The script's own ``FlagValues``, or ``None`` for a script without them."""
    own = getattr(module, "FLAGS", None)
    return own if isinstance(own, flags.FlagValues) and own is not flags.FLAGS else None


def _declaring(script_modules, name):
    """A copy of the flags of a script that declares ``--name``."""
    for module in script_modules.values():
        own = _own_flags(module)
        if own is not None and name in own:
            return copy.deepcopy(own)
    return None


def test_scripts_declare_their_flags_in_their_own_flag_values(script_modules):
    assert [n for n, m in script_modules.items() if _own_flags(m) is None] == []
    for name, module in script_modules.items():
        own = _own_flags(module)
        if own is not None:
            assert "verbose" in own, f"examples/{name}.py lacks --verbose"
            leaked = [n for n in own if n in flags.FLAGS and flags.FLAGS[n] is own[n]]
            assert not leaked, f"{name}: {leaked} joined absl's registry on import"


def _constrained(flag):
    parser = flag.parser
    if isinstance(parser, (flags.EnumParser, flags.EnumClassParser, flags.BooleanParser)):
        return True
    if getattr(parser, "lower_bound", None) is not None or getattr(parser, "upper_bound", None):
        return True
    if isinstance(getattr(parser, "_parser", None), flags.EnumParser):  # multi_enum
        return True
    return bool(flag.validators)


def test_every_example_flag_has_bounds_an_enum_or_a_validator(script_modules):
    by_module = flags.FLAGS.flags_by_module_dict()
    modules = ["examples.common_flags"] + [f"examples.{name}" for name in script_modules]
    declared = [(module, flag) for module in modules for flag in by_module.get(module, [])]
    for name, module in script_modules.items():
        own = _own_flags(module)
        declared += [(name, own[flag]) for flag in own] if own is not None else []
    loose = [f"{module}: --{flag.name}" for module, flag in declared if not _constrained(flag)]
    assert not loose, loose


INVALID = [
    ("--epochs=0", "epochs"),
    ("--batch_size=0", "batch_size"),
    ("--learning_rate=0", "learning_rate"),
    ("--temperature=0", "temperature"),
    ("--alpha=1.5", "alpha"),
    ("--seed=-1", "seed"),
    ("--seeds=0", "seeds"),
    ("--train_size=-5", "train_size"),
    ("--teacher_width=0", "teacher_width"),
    ("--verbose=3", "verbose"),
    ("--dataset=cifar", "dataset"),
    ("--dataset=idx:", "dataset"),
    ("--dataset=fashion-mnist", "dataset"),
    ("--model=/no/such/model.keras", "model"),
    ("--output_dir=", "output_dir"),
    ("--output_dir=" + os.path.abspath(__file__), "output_dir"),
    ("--pairs=a:b,c", "pairs"),
    ("--method=magic", "method"),
    ("--scheme=magic", "scheme"),
    ("--loss_weight=-1", "loss_weight"),
    ("--methods=", "methods"),
    ("--methods=kd,magic", "methods"),
    ("--compression=magic", "compression"),
    ("--target_sparsity=1", "target_sparsity"),
    ("--clusters=1", "clusters"),
    ("--energy=0", "energy"),
    ("--target=toaster", "target"),
    ("--size_budget_bytes=-1", "size_budget_bytes"),
    ("--regime=cifar", "regime"),
    ("--regimes=fashion_5k_30,cifar", "regimes"),
    ("--regime_methods=magic", "regime_methods"),
    ("--regime_students=resnet", "regime_students"),
    ("--threads=-1", "threads"),
    ("--labeled=0", "labeled"),
    ("--transfer_size=-1", "transfer_size"),
    ("--rows=magic", "rows"),
    ("--mode=fast", "mode"),
    ("--sparsity=1", "sparsity"),
    ("--fine_tune_epochs=0", "fine_tune_epochs"),
    ("--finetune_epochs=0", "finetune_epochs"),
]


@pytest.mark.parametrize("name", ["fashion_mnist", "idx:/no/such/dir", "tfds:mnist"])
def test_dataset_flag_checks_only_the_form_of_the_name(script_modules, name):
    # Files are looked for when the dataset is loaded, never when a flag is set or parsed.
    for module in script_modules.values():
        values = copy.deepcopy(_own_flags(module))
        if "dataset" in values:
            _set(values, "dataset", name)
            assert values["dataset"].value == name


def _set(values, name, text):
    """Parses ``--name=text`` and runs that flag's validators (not every flag's, as a full parse
    would: a script may validate a default that only holds where it runs)."""
    flag = values[name]
    flag.parse(text)
    setattr(values, name, flag.value)


@pytest.mark.parametrize("arg, flag", INVALID, ids=[a for a, _ in INVALID])
def test_invalid_flag_values_are_refused_in_process(script_modules, arg, flag):
    values = _declaring(script_modules, flag)
    assert values is not None, f"--{flag} is no longer declared by any example script"
    with flagsaver.flagsaver(), pytest.raises(flags.Error, match=f"--{flag}|{flag}"):
        _set(values, flag, arg.split("=", 1)[1])


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_float_flags_are_refused(script_modules, value):
    from examples import common_flags

    values = copy.deepcopy(script_modules["distill"].FLAGS)
    _set(values, "temperature", value)
    with pytest.raises(flags.IllegalFlagValueError, match="--temperature"):
        common_flags.check_finite_floats(values)


def test_work_dir_is_required_for_one_speed_mode(script_modules):
    values = _declaring(script_modules, "work_dir")
    with flagsaver.flagsaver(), pytest.raises(flags.Error, match="--work_dir"):
        _set(values, "work_dir", "/no/such/dir")
        _set(values, "mode", "live")


@pytest.mark.parametrize(
    "method, pairs, scheme, message",
    [
        ("at", [("t_nope", "s_block1")], "none", "no layer named 't_nope'"),
        ("kd", [("t_block1", "s_block1")], "none", "--pairs is used only"),
        ("at", None, "born_again", "applies only with --scheme=none"),
    ],
)
def test_distill_turns_run_time_checks_into_usage_errors(
    script_modules, method, pairs, scheme, message
):
    distill = script_modules["distill"]
    with pytest.raises(app.UsageError, match=message):
        distill.check_method_flags("digits", method, pairs, None, scheme, 4.0, 0.1, 4, 2)


def test_distill_accepts_valid_method_flags(script_modules):
    script_modules["distill"].check_method_flags(
        "digits", "at", [("t_block2", "s_block2")], None, "none", 4.0, 0.1, 4, 2
    )


_WRITTEN_PATHS = ("--model=", "--report_html=")  # files that README's earlier commands write
_README_COMMAND = re.compile(r"python3? -m examples\.(\w+)((?:[ \t]+(?:\\\n[ \t]*)?--[^\s`]+)*)")


def test_readme_commands_use_flags_their_scripts_declare(script_modules, monkeypatch):
    """Every ``python -m examples.<script> --flag=value`` in README.md parses with that script's
    flags (placeholders such as ``--seed=S`` and paths to files a run writes are checked by name
    only)."""
    monkeypatch.chdir(ROOT)  # --flagfile paths are relative to the repository
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        commands = _README_COMMAND.findall(f.read())
    assert len(commands) > 10
    for name, text in commands:
        assert name in script_modules, f"README runs examples.{name}, which is no script"
        values = copy.deepcopy(_own_flags(script_modules[name]))
        args = text.replace("\\\n", " ").split()
        for arg in args:
            flag = arg[2:].split("=")[0]
            known = flag in values or (flag.startswith("no") and flag[2:] in values)
            assert known or flag == "flagfile", f"README: examples.{name} has no --{flag}"
        concrete = [
            a
            for a in args
            if not re.search(r"=(<\w+>|[A-Z])$", a) and not a.startswith(_WRITTEN_PATHS)
        ]
        values.unparse_flags()
        values([name, *concrete])


def test_define_takes_the_shared_flags_and_their_defaults_from_run():
    from examples import common_flags

    def run(dataset="fashion_mnist", epochs=7, depth=3, alpha=None, seed=None, verbose=0):
        return dataset, epochs, depth, alpha, seed, verbose

    values = flags.FlagValues()
    holders = common_flags.define(values, run, seeds=2, seed=5)
    assert sorted(holders) == ["alpha", "dataset", "epochs", "seed", "seeds", "verbose"]
    assert values["epochs"].default == 7 and values["seed"].default == 5
    assert values["alpha"].default is None and values["verbose"].default == "0"
    assert values["epochs"].parser.lower_bound == 1  # the shared flag's bounds, in every script
    with pytest.raises(ValueError, match=r"received: \['depth'\]"):
        common_flags.define(flags.FlagValues(), depth=3)


def test_arguments_reads_run_parameters_from_flags_of_their_name_or_a_given_one():
    from examples import common_flags

    def run(dataset="digits", depth=2, untouched="kept", verbose=0):
        return dataset, depth, untouched, verbose

    values = flags.FlagValues()
    common_flags.define(values, run)
    flags.DEFINE_integer("tree_depth", 4, "Depth.", lower_bound=1, flag_values=values)
    values(["prog", "--dataset=mnist1d", "--tree_depth=6", "--verbose=2"])
    arguments = common_flags.arguments(run, values, depth="tree_depth")
    assert arguments == {"dataset": "mnist1d", "depth": 6, "verbose": 2}


def test_run_app_adds_the_scripts_flags_to_the_registry_only_when_it_runs(tmp_path):
    script = tmp_path / "tiny_script.py"
    script.write_text(
        "from absl import flags\n"
        "from examples import common_flags\n"
        "FLAGS = flags.FlagValues()\n"
        "def run(epochs=3, verbose=0):\n"
        "    return epochs\n"
        "common_flags.define(FLAGS, run)\n"
        "def main(argv):\n"
        "    common_flags.reject_extra_arguments(argv)\n"
        "    print(run(**common_flags.arguments(run, FLAGS)))\n"
        "if __name__ == '__main__':\n"
        "    common_flags.run_app(main, FLAGS)\n"
    )
    for args, status, text in [
        (["--epochs=5"], 0, "5"),
        (["--epochs=0"], 2, "--epochs=0"),
        (["extra"], 2, "unexpected arguments"),
        (["--help"], 1, "--epochs"),
    ]:
        done = run_script({"code": script.read_text(), "filename": str(script)}, args)
        assert done.returncode == status, done.stderr[-2000:]
        assert text in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_run_app_takes_only_a_scripts_own_flag_values():
    from examples import common_flags

    with pytest.raises(TypeError, match="flag_values must be the script's flags.FlagValues"):
        common_flags.run_app(lambda argv: None, None)
