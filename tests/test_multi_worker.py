"""Distillation under MultiWorkerMirroredStrategy: two worker processes on localhost match one worker."""

import contextlib
import json
import os
import signal
import socket
import time

import numpy as np

from tests import forked_script_runs

TIMEOUT = 150
# Two workers each average the gradients of half the global batch and all-reduce them; one worker
# averages the whole batch at once. Equal in exact arithmetic; in float32 the sums differ in
# rounding. After 36 Adam steps the largest weight difference measured was 9e-8 (weights ~0.5):
# a 100x margin. A wrong scaling or sharding of the batch moves weights by ~1e-3 or more.
ATOL = 1e-5


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _job(out, tf_config=None, *flags):
    """Starts ``python -m tests.resilience_job`` as a forked child; returns its pid."""
    env = {"TF_CONFIG": None if tf_config is None else json.dumps(tf_config)}
    args = ["--variant=kd", f"--out={out}", *flags]
    return forked_script_runs.start("tests.resilience_job", args, env=env)


def _weights(path):
    with np.load(path) as stored:
        return [stored[k] for k in stored.files]


def test_two_workers_on_localhost_match_one_worker(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = [
        _job(
            tmp_path / f"worker{i}.npz",
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}},
            "--multi_worker",
        )
        for i in range(2)
    ]
    processes.append(_job(tmp_path / "single.npz"))
    deadline = time.monotonic() + TIMEOUT
    try:
        for pid in processes:
            done = forked_script_runs.wait(pid, max(1.0, deadline - time.monotonic()))
            assert done.returncode == 0, done.stderr[-3000:]
            assert json.loads(done.stdout.strip().splitlines()[-1])["finite"]
    except BaseException:
        for pid in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise
    first, second, single = (
        _weights(tmp_path / name) for name in ("worker0.npz", "worker1.npz", "single.npz")
    )
    assert all(np.array_equal(a, b) for a, b in zip(first, second))  # workers stay in sync
    initial_gap = max(float(np.abs(w).max()) for w in single)
    assert initial_gap > 0
    assert all(np.allclose(a, b, rtol=0, atol=ATOL) for a, b in zip(first, single)), max(
        float(np.abs(a - b).max()) for a, b in zip(first, single)
    )
