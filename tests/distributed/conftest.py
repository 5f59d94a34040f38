"""A local Ray cluster for the distributed tests: a head and a worker node, each a ``ray start --block``
process of its own (so stopping them stops exactly the processes they started), in a temporary folder.
Each node offers 2 CPUs (on this 2-core machine: room for a replica and a batch actor per node) and a small
object store; no dashboard."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

RAY = str(Path(sys.executable).with_name("ray"))
NODE = [
    "--node-ip-address=127.0.0.1",
    "--num-cpus=2",
    "--object-store-memory=80000000",
    "--block",
    "--disable-usage-stats",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster():
    """The cluster's address (``HOST:PORT``); this test process is joined to it as a Ray driver."""
    # Ray's token authentication, with a token of this cluster's own (the nodes, `ray health-check` and
    # this process's driver all read it from the environment)
    auth = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    env = dict(os.environ)
    import ray  # after the variables above: Ray reads its authentication settings when imported

    folder = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    port = _free_port()
    address = f"127.0.0.1:{port}"
    logs = open(Path(folder) / "nodes.log", "wb")  # noqa: SIM115
    head_args = [
        "--head",
        f"--port={port}",
        "--include-dashboard=false",
        f"--temp-dir={folder}",
    ]
    nodes = [subprocess.Popen([RAY, "start", *head_args, *NODE], env=env, stdout=logs, stderr=logs)]
    try:
        _wait(lambda: _healthy(address, env, nodes), 90, "the Ray head did not start", folder)
        nodes.append(
            subprocess.Popen([RAY, "start", f"--address={address}", *NODE], env=env, stdout=logs, stderr=logs)
        )
        ray.init(address=address, namespace="clearlm", log_to_driver=False, configure_logging=False)
        _wait(lambda: len([n for n in ray.nodes() if n["Alive"]]) == 2, 90, "the worker did not join", folder)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in reversed(nodes):  # `ray start --block` stops its node's processes on SIGTERM
            node.send_signal(signal.SIGTERM)
        for node in reversed(nodes):
            try:
                node.wait(60)
            except subprocess.TimeoutExpired:
                node.kill()
        logs.close()
        shutil.rmtree(folder, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _healthy(address: str, env, nodes) -> bool:
    if nodes[0].poll() is not None:
        raise RuntimeError("`ray start --head` exited")
    check = subprocess.run([RAY, "health-check", f"--address={address}"], env=env, capture_output=True)
    return check.returncode == 0


def _wait(condition, timeout: float, message: str, folder: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            log = (Path(folder) / "nodes.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{message}:\n{log}")
        time.sleep(0.5)
