"""``import keras_kd as kd`` reaches every subpackage, and loads tfmot only when it is used.

Each check runs in its own process, forked from one that imported only TensorFlow and tf_keras
(``tests/forked_script_runs.py``, ``preload="tensorflow"``), so that nothing the test session or
another check imported can make an attribute resolve: a lazily loaded subpackage gets a process of
its own, since accessing one subpackage may import another.
"""

import contextlib
import json
import os
import signal

import pytest

import keras_kd as kd
from tests import forked_script_runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBPACKAGES = sorted(
    entry.name
    for entry in os.scandir(os.path.join(ROOT, "keras_kd"))
    if os.path.isfile(os.path.join(entry.path, "__init__.py"))
)
LAZY = kd._LAZY_SUBPACKAGES
EAGER = sorted(set(SUBPACKAGES) - set(LAZY)) + ["resilience"]
TFMOT = "tensorflow_model_optimization"
TIMEOUT = 180

# Prints, as one JSON line: what a bare import loaded, then what accessing each name of argv gave.
_PROBE = f"""
import json, sys

def loaded(module):
    return any(m == module or m.startswith(module + ".") for m in sys.modules)

import keras_kd as kd

result = {{"tfmot_after_import": loaded("{TFMOT}"), "dir": dir(kd), "names": {{}}}}
for name in sys.argv[1:]:
    before = loaded("keras_kd." + name)
    result["names"][name] = {{
        "loaded_by_import": before,
        "module": getattr(kd, name).__name__,
        "tfmot_after": loaded("{TFMOT}"),
    }}
print(json.dumps(result))
"""


def _probe(*names):
    return forked_script_runs.start({"code": _PROBE}, names, preload="tensorflow")


@pytest.fixture(scope="module")
def probes():
    """One interpreter per lazy subpackage (accessed alone) and one for the rest, concurrently."""
    running = {name: _probe(name) for name in LAZY}
    running["eager"] = _probe(*EAGER)
    results = {}
    try:
        for key in list(running):
            done = forked_script_runs.wait(running.pop(key), TIMEOUT)
            assert done.returncode == 0, done.stderr[-3000:]
            results[key] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return results


def test_the_issue_subpackages_are_all_there():
    expected = {"bridge", "compress", "data", "export", "losses", "report", "schemes", "students"}
    assert expected - set(SUBPACKAGES) == set()


@pytest.mark.parametrize("name", LAZY)
def test_lazy_subpackage_resolves_after_a_bare_import(probes, name):
    assert probes[name]["names"][name]["module"] == f"keras_kd.{name}"


@pytest.mark.parametrize("name", EAGER)
def test_other_subpackage_is_imported_with_the_package(probes, name):
    entry = probes["eager"]["names"][name]
    # Loaded by `import keras_kd` itself: no earlier access in the probe can have imported it.
    assert entry["loaded_by_import"] and entry["module"] == f"keras_kd.{name}"


def test_bare_import_does_not_load_tfmot(probes):
    assert [key for key, result in probes.items() if result["tfmot_after_import"]] == []
    # The probe does see tfmot once it is loaded: kd.compress imports it.
    assert probes["compress"]["names"]["compress"]["tfmot_after"]


def test_dir_lists_every_subpackage(probes):
    listed = set(probes["eager"]["dir"])
    assert set(SUBPACKAGES) - listed == set()
    assert {"Distiller", "keras", "resilience", "__version__"} <= listed
    assert set(SUBPACKAGES) <= set(kd.__all__)


def test_unknown_attribute_raises_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="'keras_kd' has no attribute 'no_such_subpackage'"):
        kd.no_such_subpackage  # noqa: B018
