"""Runs example scripts with a bad flag, each as ``python -m examples.<name>`` would (a subprocess).

    python -m tests.bad_flag_runs benchmark=--methods=magic distill=--method=magic ...

Importing TensorFlow dominates a script that exits on a bad flag (about 8 CPU seconds of the 9), so
this process imports keras_kd and its stack once and forks one child per script. Each child runs
the script's module as ``__main__`` (``runpy``, as ``-m`` does) with its own ``sys.argv``, its
stdout discarded and its stderr going to a file, so it meets the same absl registry, flag parsing and exit path as a fresh
process; nothing of TensorFlow runs before it exits. Prints one JSON line:
``{name: [exit status, stderr]}``.
"""

import json
import os
import runpy
import sys
import tempfile

import tensorflow_model_optimization  # noqa: F401  (imported once, before the forks)

import keras_kd  # noqa: F401
from examples import common_flags  # noqa: F401


def _child(name, flag, stderr_path):
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the parent's stdout carries the JSON line
    os.dup2(os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    sys.argv = [f"examples.{name}", flag]
    status = 0
    try:
        runpy.run_module(f"examples.{name}", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # a traceback is what the test looks for: print it, as Python would
        import traceback

        traceback.print_exc()
        status = 1
    sys.stderr.flush()
    os._exit(status)


def main(pairs):
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for pair in pairs:
            name, flag = pair.split("=", 1)
            path = os.path.join(work, f"{name}.stderr")
            pid = os.fork()
            if pid == 0:
                _child(name, flag, path)
            _, status = os.waitpid(pid, 0)
            with open(path, encoding="utf-8", errors="replace") as f:
                results[name] = [os.waitstatus_to_exitcode(status), f.read()]
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
