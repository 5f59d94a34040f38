"""The base model a LoRA adapter is trained on: loaded on the torch backend, identified by a weights hash."""

from __future__ import annotations

import hashlib
import warnings
from contextlib import contextmanager
from pathlib import Path

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.models.backends.torch_backend import TorchBackend
from clearlm.models.catalog import CATALOG


def load_base(model: str, backend: str = "torch") -> TorchBackend:
    """Load ``model`` (catalog name, transformers folder, .gguf file dequantized to float32, hub id) as a
    trainable float torch model.

    Raises:
        BackendUnavailableError: a backend other than torch (llama.cpp and vLLM have no gradients).
        InvalidInputError: a folder holding only GGUF files (llama.cpp's format, no transformers config);
            weights that are not floating point (quantized).
        ModelNotFoundError: nothing of that name (see ``clearlm.models.load_backend``).
    """
    if backend not in ("torch", "auto"):
        raise BackendUnavailableError(
            f"LoRA training needs gradients, which only the torch backend has, not {backend!r}: "
            "tune with --backend torch (a served adapter can still be merged and exported)"
        )
    path = Path(model).expanduser()
    if model not in CATALOG and path.is_dir() and not (path / "config.json").exists():
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            raise InvalidInputError(
                f"{path} holds only GGUF weights ({ggufs[0].name}), llama.cpp's format, which cannot be "
                f"trained: give the file itself ({ggufs[0]}) to have it dequantized to float32, or a "
                "catalog name (clearlm models list)"
            )
    from clearlm.models import load_backend

    base = load_backend(model, "torch")
    check_trainable(base)
    return base


def check_trainable(base) -> None:
    """Raises BackendUnavailableError unless ``base`` is a torch backend with floating-point weights."""
    if getattr(base, "kind", None) != "torch":
        raise BackendUnavailableError(
            f"LoRA needs the torch backend, got {getattr(base, 'kind', base)!r}: load the base with backend='torch'"
        )
    if getattr(base.model, "hf_quantizer", None) is not None or any(
        not p.dtype.is_floating_point for p in base.model.parameters()
    ):
        raise InvalidInputError(
            f"{base.name} has quantized weights: dequantize it (a .gguf file or a catalog name loads as float32)"
        )


def weights_sha256(model) -> str:
    """SHA-256 over the model's tensors (name, dtype, shape and bytes, in name order): the base identity an
    adapter records and is checked against. Tied tensors count once. ~2 s per GB on one core."""
    digest = hashlib.sha256()
    seen: set[int] = set()
    for name, tensor in sorted(model.state_dict().items()):
        if "lora_" in name or tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        name = name.replace("base_model.model.", "").replace(".base_layer", "")
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.view(-1).view(dtype=__import__("torch").uint8).numpy().tobytes())
    return digest.hexdigest()


def base_hash(base) -> str:
    """The weights hash of a backend's model, computed once and kept on the backend."""
    cached = getattr(base, "_clearlm_weights_sha256", None)
    if cached is None:
        cached = weights_sha256(base.model)
        base._clearlm_weights_sha256 = cached
    return cached


def base_info(base) -> dict:
    """What an adapter card records of its base: name, weights hash, the packaged GGUF's hash, sizes."""
    spec = CATALOG.get(base.name)
    return {
        "name": base.name,
        "weights_sha256": base_hash(base),
        "gguf_sha256": spec.sha256 if spec else None,
        "parameters": sum(p.numel() for p in base.model.parameters()),
        "architecture": type(base.model).__name__,
        "dtype": str(next(base.model.parameters()).dtype).replace("torch.", ""),
    }


@contextmanager
def peft_quietly():
    """Around a PeftModel's creation (``get_peft_model``, ``PeftModel.from_pretrained``): PEFT 0.x reads
    ``model.is_gradient_checkpointing``, which transformers 5 deprecated with a FutureWarning on every
    adapter a user trains, loads or exports; only that warning is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield
