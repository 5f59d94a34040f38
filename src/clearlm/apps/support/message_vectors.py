"""Sentence embeddings of the desk's stored messages, each computed once and kept in memory by message id.

Used by :mod:`.memory` to rank a customer's earlier messages by similarity to their latest one. Messages
are never edited once stored, so a message's id names its text for good; the vectors (float32, unit
length) are kept in a least-recently-used map of ``size`` entries (20,000 all-MiniLM-L6-v2 vectors: 31
MB). They are not written to the database: after a restart a message is embedded again the first time a
context needs it (a bounded number per turn).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np

from clearlm.errors import ClearlmError

log = logging.getLogger("clearlm.support")

EMBED_CHARS = 1_000  # all-MiniLM-L6-v2 reads 256 tokens: more is cut anyway


class MessageVectors:
    """The vectors of messages (objects with ``id`` and ``text``), by id; thread safe.

    Args:
        embedder: ``() -> Embedder`` (``encode(texts) -> float32[n, d]``, L2-normalised), called once,
            on first use; None: the packaged all-MiniLM-L6-v2 (``knowledge.base.default_embedder``).
            When it raises a ClearlmError (e.g. ModelNotFoundError: the package is not installed),
            :meth:`of` answers {} from then on and the reason is logged once.
        size: vectors kept.
    """

    def __init__(self, embedder: Callable[[], object] | None = None, size: int = 20_000) -> None:
        self._factory = embedder
        self._embedder = None
        self._unavailable = False
        self.size = size
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.embedded = 0  # texts embedded so far (for tests and benchmarks)

    def of(self, messages: Iterable) -> dict[int, np.ndarray]:
        """``{message id: unit vector}`` for ``messages``, embedding (in one batch) only those not kept;
        {} without an embedder."""
        embedder = self._load()
        if embedder is None:
            return {}
        messages = list(messages)
        with self._lock:
            found = {m.id: self._cache[m.id] for m in messages if m.id in self._cache}
            for key in found:
                self._cache.move_to_end(key)
        new = list({m.id: m for m in messages if m.id not in found}.values())
        if new:
            encoded = embedder.encode([m.text[:EMBED_CHARS] for m in new])
            with self._lock:
                self.embedded += len(new)
                for message, vector in zip(new, encoded, strict=True):
                    found[message.id] = self._cache[message.id] = vector
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return found

    def _load(self):
        if self._embedder is None and not self._unavailable:
            try:
                if self._factory is None:
                    from clearlm.knowledge.base import default_embedder

                    self._embedder = default_embedder()
                else:
                    self._embedder = self._factory()
            except ClearlmError as exc:
                log.warning("the support memory recalls earlier messages by identifiers only: %s", exc)
                self._unavailable = True
        return self._embedder
