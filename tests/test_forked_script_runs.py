"""The fork server that runs scripts for the tests: exit status, streams, environment, kill."""

import os
import signal
import time

import pytest

from tests import forked_script_runs as forked

_PROGRAM = """
import os, sys
print("out", os.environ.get("KD_FORK_SET"), os.environ.get("KD_FORK_UNSET"), sys.argv[1:])
print("err", os.getcwd(), file=sys.stderr)
raise SystemExit(int(sys.argv[1]))
"""


def test_a_run_returns_its_status_streams_environment_and_working_directory(tmp_path):
    os.environ["KD_FORK_UNSET"] = "inherited"
    try:
        done = forked.run_script(
            {"code": _PROGRAM}, [3], env={"KD_FORK_SET": "x", "KD_FORK_UNSET": None}, cwd=tmp_path
        )
    finally:
        del os.environ["KD_FORK_UNSET"]
    assert done.returncode == 3
    assert done.stdout == "out x None ['3']\n"
    assert done.stderr == f"err {tmp_path}\n"


def test_a_traceback_reaches_stderr_with_the_named_file_and_line():
    done = forked.run_script({"code": "x = 1\nraise KeyError('k')\n", "filename": "prog.py"})
    assert done.returncode == 1
    assert 'File "prog.py", line 2' in done.stderr and "KeyError: 'k'" in done.stderr


def test_a_started_run_polls_as_running_until_killed_by_a_signal():
    pid = forked.start({"code": "import time; time.sleep(60)"})
    assert forked.poll(pid) is None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while forked.poll(pid) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    done = forked.wait(pid)
    assert done.returncode == -signal.SIGKILL


def test_an_unknown_run_raises_the_servers_error():
    with pytest.raises(RuntimeError, match="ChildProcessError"):
        forked.wait(1)


def test_each_run_keeps_its_own_output_when_others_start_and_end_around_it(tmp_path):
    # Regression: output files were numbered by the runs not yet reaped, so a run started after an
    # earlier one ended took the files of one still running, and each read the other's output.
    first = forked.start({"code": "print('first')"})
    printed, gate = tmp_path / "printed", tmp_path / "go"
    waiting = forked.start({"code": _WAITING}, env={"PRINTED": printed, "GATE": gate})
    assert forked.wait(first).stdout == "first\n"
    deadline = time.monotonic() + 60
    while not printed.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert forked.run_script({"code": "print('third')"}).stdout == "third\n"
    gate.touch()
    assert forked.wait(waiting).stdout == "second: before\nsecond: after\n"


_WAITING = """
import os, time
print("second: before", flush=True)
open(os.environ["PRINTED"], "w").close()
while not os.path.exists(os.environ["GATE"]):
    time.sleep(0.02)
print("second: after")
"""


def test_a_tensorflow_preload_leaves_keras_kd_for_the_child_to_import():
    program = "import sys; print(sorted({'tensorflow', 'keras_kd', 'tf_keras'} & set(sys.modules)))"
    done = forked.run_script({"code": program}, preload="tensorflow")
    assert done.returncode == 0 and done.stdout == "['tensorflow', 'tf_keras']\n"
    full = forked.run_script({"code": program})
    assert full.stdout == "['keras_kd', 'tensorflow', 'tf_keras']\n"
    with pytest.raises(ValueError, match="preload must be one of .* received: preload='numpy'"):
        forked.start({"code": program}, preload="numpy")
