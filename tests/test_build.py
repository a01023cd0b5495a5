"""Keeps BUILD in sync with the tree: every module, test and example has a target, every source exists."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rules():
    """Parses BUILD (Starlark calls are valid Python) into [(rule, keyword arguments)] of py_ rules."""
    with open(os.path.join(ROOT, "BUILD"), encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename="BUILD")
    rules = []
    for node in tree.body:
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id.startswith("py_")
        ):
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords if k.arg}
            rules.append((node.value.func.id, kwargs))
    return rules


def _targets():
    """[(rule, name, srcs, deps)] of every py_ target of BUILD."""
    return [
        (rule, kwargs["name"], kwargs.get("srcs", []), kwargs.get("deps", []))
        for rule, kwargs in _rules()
    ]


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


def test_every_test_has_a_py_test():
    tests = [f for f in _python_files("tests") if os.path.basename(f).startswith("test_")]
    assert tests and set(tests) - _srcs_of("py_test") == set()


def test_every_example_script_has_a_py_binary_and_every_py_binary_is_a_script():
    scripts = {f for f in _python_files("examples") if _is_script(f)}
    assert {"examples/distill.py", "examples/pipeline.py"} <= scripts  # the detection finds them
    mains = set()
    for rule, kwargs in _rules():
        if rule == "py_binary":
            main, srcs = kwargs.get("main", kwargs["name"] + ".py"), kwargs.get("srcs", [])
            assert main in srcs, f"py_binary {kwargs['name']}: main {main} is not in srcs {srcs}"
            mains.add(main)
    assert scripts - mains == set(), "scripts without a py_binary"
    assert mains - scripts == set(), "py_binary targets whose main is not a script"


def test_support_files_are_in_some_target():
    listed = {src for _, _, srcs, _ in _targets() for src in srcs}
    assert set(_python_files("tests") + _python_files("examples")) - listed == set()


def _is_script(path):
    """Whether a file runs as a program: it has a top-level ``if __name__ == "__main__":``."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    return any(
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and any(
            isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators
        )
        for node in tree.body
    )
