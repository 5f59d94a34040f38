"""Load a model by catalog name, local folder, local .gguf file or hub id, behind one backend protocol."""

from __future__ import annotations

from pathlib import Path

import torch

from clearlm.errors import BackendUnavailableError, ModelNotFoundError
from clearlm.models import assemble as asm
from clearlm.models import cache
from clearlm.models.backends.base import Backend
from clearlm.models.backends.torch_backend import TorchBackend
from clearlm.models.catalog import CATALOG, get_spec, unknown_model
from clearlm.models.convert import load_gguf
from clearlm.models.pull import PullHooks, ensure_checkpoint, ensure_gguf

BACKENDS = ("torch", "llamacpp", "vllm")
AUTO = "auto"  # the default: see resolve_backend
DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def load_backend(
    model: str,
    backend: str = "torch",
    *,
    dtype: str = "float32",
    device: str = "cpu",
    slots: int = 1,
    threads: int | None = None,
    hooks: PullHooks = PullHooks(),
    engine_url: str | None = None,
    replicas: int = 0,
    ray_address: str | None = None,
    lora_modules: dict[str, Path] | None = None,
) -> Backend:
    """Load ``model`` with the chosen backend ("torch", "llamacpp", or "auto": see :func:`resolve_backend`;
    the CLI and server default to "auto", this function to torch, the one that explanations need).

    ``model`` is a catalog name (its packages must be installed; it is assembled and converted into the
    cache on first use), a local transformers folder, a local ``.gguf`` file, or a hub id (found only where
    a hub or its cache is reachable). ``slots``: sequences the llamacpp backend decodes together
    (continuous batching; the torch backend generates one at a time). ``threads``: CPU threads for
    llama.cpp (None = one per core; fewer on a busy machine, where llama.cpp's spinning threads wait on
    each other). ``engine_url``: the vllm backend uses the vLLM server running there instead of starting
    one (its model must be ``model``, whose tokenizer clearlm loads). ``replicas``: when >= 1, that many
    replicas of ``backend`` on the Ray cluster at ``ray_address`` (None: RAY_ADDRESS or a one-machine Ray),
    each holding ``slots`` sequences and ``threads`` CPUs (see :mod:`clearlm.models.backends.ray_replicas`).
    ``lora_modules``: vllm only, LoRA adapters (PEFT folders) by name that vLLM serves beside the base
    (``model: NAME`` in a request to the vLLM server; with ``engine_url``, checked to be served there).

    Raises:
        ModelNotFoundError: nothing of that name; InvalidInputError: unknown backend or dtype;
        IntegrityError: a packaged file's hash differs; BackendUnavailableError: llama-cpp-python or
        the vllm engine missing.
    """
    backend = resolve_backend(model, backend)
    if backend not in BACKENDS:
        raise BackendUnavailableError(
            f"unknown backend {backend!r}: choose one of {AUTO}, {', '.join(BACKENDS)}"
        )
    if dtype not in DTYPES:
        raise BackendUnavailableError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if replicas:
        from clearlm.models.backends.ray_replicas import RayReplicas

        return RayReplicas(
            model, backend, replicas=replicas, address=ray_address, slots=slots, threads=threads, dtype=dtype
        )
    if backend == "llamacpp":
        return _load_llamacpp(model, hooks, slots, threads)
    if lora_modules and backend != "vllm":
        raise BackendUnavailableError(
            f"lora_modules are served by the vllm backend, not {backend!r} (torch: clearlm.tune.serve)"
        )
    if backend == "vllm":
        return _load_vllm(model, hooks, engine_url, lora_modules)
    return _load_torch(model, DTYPES[dtype], device, hooks)


def resolve_backend(model: str, backend: str = AUTO) -> str:
    """The backend that serves ``model``: ``backend`` itself, or for "auto" the fastest one installed that
    can run it: llama.cpp for a catalog model or a .gguf file when llama-cpp-python is installed (on this
    project's 2-core benchmark it decodes 4-5x faster than transformers for one stream and about 10x
    faster for eight, see benchmarks/bench_server.py), torch (transformers) otherwise: for a local folder
    or hub id, or without llama-cpp-python. Explanations always run on torch, loaded beside it on demand.
    """
    if backend != AUTO:
        return backend
    gguf = model in CATALOG or Path(model).expanduser().suffix == ".gguf"
    return "llamacpp" if gguf and _importable("llama_cpp") else "torch"


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _load_torch(model: str, dtype: torch.dtype, device: str, hooks: PullHooks) -> TorchBackend:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model).expanduser()
    if model in CATALOG:
        _require_packages(model)
        source = ensure_checkpoint(get_spec(model), hooks)
    elif path.is_file() and path.suffix == ".gguf":
        m, tok = load_gguf(path, dtype)
        return TorchBackend(m.to(device), tok, str(path))
    elif path.is_dir():
        source = path
    elif path.suffix == ".gguf" or model.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"no model file or folder at {model!r}: check the path")
    elif model.count("/") == 1:
        source = model  # a hub id
    else:
        raise unknown_model(model)
    try:
        tok = AutoTokenizer.from_pretrained(source)
        m = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except (OSError, ValueError) as exc:  # ValueError: a folder without a tokenizer
        raise ModelNotFoundError(
            f"cannot load model {model!r}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
        ) from None
    return TorchBackend(m.to(device), tok, model)


def _load_llamacpp(model: str, hooks: PullHooks, slots: int, threads: int | None) -> Backend:
    from transformers import AutoTokenizer

    from clearlm.models.backends.llamacpp_backend import LlamaCppBackend, import_llama

    import_llama()  # fail before assembling or converting anything when llama-cpp-python is missing
    path = Path(model).expanduser()
    if model in CATALOG:
        _require_packages(model)
        spec = get_spec(model)
        gguf = ensure_gguf(spec, hooks)
        tok = AutoTokenizer.from_pretrained(ensure_checkpoint(spec, hooks))
    elif path.is_file() and path.suffix == ".gguf":
        gguf, tok = path, AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    else:
        raise ModelNotFoundError(f"the llamacpp backend needs a catalog name or a .gguf file, got {model!r}")
    return LlamaCppBackend(gguf, tok, model, slots=slots, n_threads=threads)


def _load_vllm(
    model: str, hooks: PullHooks, engine_url: str | None, lora_modules: dict[str, Path] | None = None
) -> Backend:
    from transformers import AutoTokenizer

    from clearlm.models.backends.vllm_backend import VllmBackend
    from clearlm.models.backends.vllm_engine import engine_python

    if engine_url is None:
        engine_python()  # fail before converting anything when the engine is not installed
    path = Path(model).expanduser()
    if model in CATALOG:
        _require_packages(model)
        source = ensure_checkpoint(get_spec(model), hooks)
    elif path.is_dir():
        source = path
    else:
        raise ModelNotFoundError(
            f"the vllm backend needs a catalog name or a transformers folder, got {model!r}"
        )
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load the tokenizer of {model!r}: {exc}") from None
    if engine_url is not None:
        served = VllmBackend.connect(engine_url, tok, model)
        missing = sorted(set(lora_modules or ()) - set(served.served_models()))
        if missing:
            raise BackendUnavailableError(
                f"the vLLM server at {engine_url} does not serve the LoRA adapter(s) {', '.join(missing)}: "
                "start it with --enable-lora --lora-modules NAME=PATH"
            )
        return served
    return VllmBackend.start(source, tok, model, lora_modules=lora_modules)


def _require_packages(name: str) -> None:
    missing = asm.missing_packages(get_spec(name))
    if missing:
        raise ModelNotFoundError(
            f"model {name!r} is not installed (missing {', '.join(missing)}): run `clearlm models pull {name}`"
        )


__all__ = ["AUTO", "BACKENDS", "DTYPES", "cache", "load_backend", "resolve_backend"]
