"""Keeps BUILD in sync with the tree: every module, test and example has a target, every source exists."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _targets():
    """Parses BUILD (Starlark calls are valid Python) into [(rule, name, srcs, deps)]."""
    with open(os.path.join(ROOT, "BUILD"), encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename="BUILD")
    targets = []
    for node in tree.body:
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
        ):
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords if k.arg}
            if node.value.func.id.startswith("py_"):
                targets.append(
                    (
                        node.value.func.id,
                        kwargs["name"],
                        kwargs.get("srcs", []),
                        kwargs.get("deps", []),
                    )
                )
    return targets


def _python_files(folder):
    found = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        found += [
            os.path.relpath(os.path.join(dirpath, f), ROOT) for f in filenames if f.endswith(".py")
        ]
    return sorted(found)


def _srcs_of(rule):
    return {src for kind, _, srcs, _ in _targets() if kind == rule for src in srcs}


def test_target_names_are_unique_and_deps_resolve():
    names = [name for _, name, _, _ in _targets()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for _, name, _, deps in _targets():
        unknown = [d for d in deps if d.lstrip(":") not in names]
        assert not unknown, f"target {name} depends on unknown targets {unknown}"


def test_every_listed_source_exists():
    missing = [
        src
        for _, _, srcs, _ in _targets()
        for src in srcs
        if not os.path.isfile(os.path.join(ROOT, src))
    ]
    assert not missing


def test_every_library_module_has_a_py_library():
    assert set(_python_files("keras_kd")) - _srcs_of("py_library") == set()


@pytest.mark.parametrize(
    "rule, folder, prefix", [("py_test", "tests", "test_"), ("py_binary", "examples", "")]
)
def test_every_test_and_example_has_its_target(rule, folder, prefix):
    files = [f for f in _python_files(folder) if os.path.basename(f).startswith(prefix)]
    if rule == "py_binary":
        files = [f for f in files if _is_script(f)]
    assert set(files) - _srcs_of(rule) == set()


def test_support_files_are_in_some_target():
    listed = {src for _, _, srcs, _ in _targets() for src in srcs}
    assert set(_python_files("tests") + _python_files("examples")) - listed == set()


def _is_script(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return "app.run(main)" in f.read()
