"""Runs scripts in children forked from one process per test worker that imported TensorFlow once.

    done = run_script("examples.tree", ["--tree_depth=0"])  # like subprocess.run([python, -m, ...])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    job = start("tests.resilience_job", ["--out=a.npz"]); os.kill(job, signal.SIGKILL); wait(job)

Importing TensorFlow, tfmot and keras_kd takes about 9 CPU seconds, most of a test that runs a
script for one epoch. So each test worker keeps one server process (started at first use, ended
when the worker exits) that imports that stack but never runs a TensorFlow op, then forks one child
per run. A child forked before TensorFlow's runtime starts builds its own thread pools and trains
like a fresh process. Each child runs its target as ``__main__`` (a module through ``runpy``, as
``python -m`` does, or a code string, as ``python -c`` does) with its own ``sys.argv``, environment
variables and working directory, its stdout and stderr going to files, so it meets the same absl
flag registry, flag parsing and exit path as a fresh process.

A test of what keras_kd imports (its lazy subpackages, tfmot only on use) asks for
``preload="tensorflow"``: a second server that imported only TensorFlow and tf_keras, so that the
child imports keras_kd itself. What a fork cannot test stays a real subprocess: anything decided
while TensorFlow is imported (the C++ log level, fixed at 3 here; thread counts) and running a
script as a file without the package on the path.
"""

import atexit
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import tempfile
import threading
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 600  # seconds for one run: a hang, not a slow machine


class Done(subprocess.CompletedProcess):
    """A finished run: ``returncode`` (negative: killed by that signal), ``stdout``, ``stderr``."""


# What each kind of server imports before it forks: the whole stack, or TensorFlow alone.
PRELOADS = ("keras_kd", "tensorflow")


def run_script(target, args=(), env=None, cwd=ROOT, timeout=TIMEOUT, preload="keras_kd"):
    """Runs ``target`` with ``args`` and waits for it, like ``subprocess.run``.

    ``target`` is a module (``"examples.x"``, as ``python -m``) or ``{"code": source}`` (as
    ``python -c``; with ``"filename"``, tracebacks name that file and its lines). ``preload`` is
    one of ``PRELOADS``: what the process it is forked from imported.
    """
    return wait(start(target, args, env, cwd, preload), timeout)


def run_forked(runs, env=None):
    """``[(exit status, stdout, stderr)]`` of ``runs``, ``[(script, [args])]`` of ``examples``."""
    done = [run_script(f"examples.{script}", args, env) for script, args in runs]
    return [(run.returncode, run.stdout, run.stderr) for run in done]


def start(target, args=(), env=None, cwd=ROOT, preload="keras_kd"):
    """Forks a run of ``target`` and returns its pid at once; ``env`` values of None unset."""
    if preload not in PRELOADS:
        raise ValueError(f"preload must be one of {PRELOADS}, received: preload={preload!r}")
    request = {"op": "start", "target": target, "args": [str(a) for a in args],
               "env": {k: (None if v is None else str(v)) for k, v in (env or {}).items()},
               "cwd": str(cwd)}  # fmt: skip
    server = _server(preload)
    pid = server.ask(request, TIMEOUT)["pid"]
    _OWNERS[pid] = server
    return pid


def poll(pid):
    """The run's exit status, or None while it runs (like ``Popen.poll``)."""
    return _owner(pid).ask({"op": "poll", "pid": pid}, TIMEOUT)["status"]


def wait(pid, timeout=TIMEOUT):
    """Waits for the run ``pid`` and returns its :class:`Done`."""
    reply = _owner(pid).ask({"op": "wait", "pid": pid}, timeout)
    _OWNERS.pop(pid, None)
    return Done([pid], reply["status"], reply["stdout"], reply["stderr"])


def _owner(pid):
    """The server that forked ``pid`` (the full one for a pid it never started: it says so)."""
    return _OWNERS.get(pid) or _server("keras_kd")


class _Server:
    def __init__(self, preload):
        self.preload = preload
        self.log = tempfile.TemporaryFile("w+")  # its own stderr: TensorFlow's start-up lines
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forked_script_runs", preload],
            cwd=ROOT,
            # TensorFlow reads its C++ log level once, in the server: quiet, as the examples'
            # default --verbose=0 sets it; a test of other levels needs a real subprocess.
            env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            start_new_session=True,  # its children die with it: os.killpg
        )
        self.lock = threading.Lock()

    def ask(self, request, timeout):
        with self.lock:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            ready, _, _ = select.select([self.process.stdout], [], [], timeout)
            line = self.process.stdout.readline() if ready else ""
            if not line:
                self.close()
                self.log.seek(0)
                raise TimeoutError(
                    f"no answer in {timeout} s to {request}; the server was ended. Its stderr "
                    f"ends: {self.log.read()[-3000:]}"
                )
            reply = json.loads(line)
            if "error" in reply:
                raise RuntimeError(reply["error"])
            return reply

    def close(self):
        _SERVERS.pop(self.preload, None)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


_SERVERS = {}  # preload -> _Server
_OWNERS = {}  # pid -> the _Server that forked it


def _server(preload):
    server = _SERVERS.get(preload)
    if server is None or server.process.poll() is not None:
        server = _SERVERS[preload] = _Server(preload)
    return server


@atexit.register
def _close_at_exit():
    for server in list(_SERVERS.values()):
        server.close()


def _child(request, stdout_path, stderr_path):
    os.dup2(os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
    os.dup2(os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.stdout = sys.__stdout__  # the server's own print goes to stderr
    status = 0
    try:
        for key, value in request["env"].items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        os.chdir(request["cwd"])
        target = request["target"]
        if isinstance(target, dict):
            filename = target.get("filename", "<string>")
            sys.argv = [filename if target.get("filename") else "-c", *request["args"]]
            exec(compile(target["code"], filename, "exec"), {"__name__": "__main__"})
        else:
            sys.argv = [target, *request["args"]]
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        code = done.code
        if not (code is None or isinstance(code, int)):
            print(code, file=sys.stderr)
        status = code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:  # the traceback Python would print, which the tests look for
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def serve(preload):
    """Answers one JSON request per stdin line with one JSON line; forks a child per ``start``."""
    if preload == "keras_kd":
        import tensorflow_model_optimization  # noqa: F401  (imported once, before the forks)

        import keras_kd  # noqa: F401
        from examples import common_flags  # noqa: F401
    else:  # as keras_kd._compat would: tf.keras is tf_keras
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        import tensorflow  # noqa: F401
        import tf_keras  # noqa: F401

    sys.path.insert(0, ROOT)
    reply_to = sys.stdout
    sys.stdout = sys.stderr  # nothing but replies on the pipe
    work = tempfile.mkdtemp()
    files, finished, started = {}, {}, 0
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "start":
                # A number per start, never reused: a child's files must outlive the reply that
                # reads them even when another child started since has finished.
                started += 1
                paths = [os.path.join(work, f"{started}.{stream}") for stream in ("out", "err")]
                for path in paths:  # here, not in the child: a child killed at once has them too
                    open(path, "w").close()
                sys.stderr.flush()
                reply_to.flush()
                pid = os.fork()
                if pid == 0:
                    _child(request, *paths)
                files[pid] = paths
                reply = {"pid": pid}
            else:
                pid = request["pid"]
                if pid not in finished:
                    flags = os.WNOHANG if request["op"] == "poll" else 0
                    done, status = os.waitpid(pid, flags)
                    if done:
                        out, err = (_read(path) for path in files.pop(pid))
                        status = os.waitstatus_to_exitcode(status)
                        finished[pid] = {"status": status, "stdout": out, "stderr": err}
                reply = finished.get(pid, {"status": None})
                if request["op"] == "wait":
                    finished.pop(pid)
        except Exception as error:  # a bad request: the client raises it
            reply = {"error": f"{type(error).__name__}: {error}"}
        reply_to.write(json.dumps(reply) + "\n")
        reply_to.flush()


if __name__ == "__main__":
    serve(sys.argv[1])
