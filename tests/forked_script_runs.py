"""Runs example scripts that exit before training, each as ``python -m examples.<name>`` would.

    python -m tests.forked_script_runs '[["distill", ["--method=magic"]], ["tree", ["--help"]]]'
    results = run_forked([("distill", ["--method=magic"])])  # from a test: that, as a subprocess

Importing TensorFlow dominates a script that exits on a bad flag or ``--help`` (about 8 CPU seconds
of the 9), so this process imports keras_kd and its stack once and forks one child per run. Each
child runs the script's module as ``__main__`` (``runpy``, as ``-m`` does) with its own
``sys.argv``, its stdout and stderr going to files, so it meets the same absl registry, flag parsing
and exit path as a fresh process. Only for runs that stop before TensorFlow computes anything: a
child forked from a process that imported TensorFlow must not train. Prints one JSON line, a list of
``[exit status, stdout, stderr]`` in the order of the runs.
"""

import json
import os
import runpy
import subprocess
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_forked(runs, env=None):
    """``[(exit status, stdout, stderr)]`` of ``runs``, ``[(script, [args])]``, from a subprocess.

    Every script must exit before training (bad flags, ``--help``).
    """
    done = subprocess.run(
        [sys.executable, "-m", "tests.forked_script_runs", json.dumps(runs)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [tuple(result) for result in json.loads(done.stdout.splitlines()[-1])]


def _child(module, args, stdout_path, stderr_path):
    os.dup2(os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
    os.dup2(os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    sys.argv = [f"examples.{module}", *args]
    status = 0
    try:
        runpy.run_module(f"examples.{module}", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # the traceback Python would print, which the tests look for
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def main(runs):
    import tensorflow_model_optimization  # noqa: F401  (imported once, before the forks)

    import keras_kd  # noqa: F401
    from examples import common_flags  # noqa: F401

    results = []
    with tempfile.TemporaryDirectory() as work:
        for index, (module, args) in enumerate(runs):
            out, err = (os.path.join(work, f"{index}.{stream}") for stream in ("out", "err"))
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(module, args, out, err)
            _, status = os.waitpid(pid, 0)
            results.append([os.waitstatus_to_exitcode(status), _read(out), _read(err)])
    print(json.dumps(results))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
