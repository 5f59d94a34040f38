"""The packaged embedder used from many threads at once (as the server's worker threads use it)."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from clearlm.models.embeddings import load_embedder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()


def test_counting_and_embedding_at_once(embedder):
    """``count_tokens`` and ``encode`` each set the shared tokenizer's truncation and padding; without the
    lock one thread's settings land in the other's call (unpadded batches: "Unable to create tensor")."""
    texts = ["short", "a somewhat longer text with more words in it " * 3, "x " * 400]
    pair = ["hi there", "a longer one, with several more words"]
    expected_count, expected_vectors = embedder.count_tokens(texts), embedder.encode(pair)
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def count() -> None:
        try:
            while not stop.is_set():
                counts.append(embedder.count_tokens(texts))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def embed() -> None:
        try:
            for _ in range(40):
                assert np.allclose(embedder.encode(pair), expected_vectors, atol=1e-5)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            stop.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so an unguarded call is caught mid-way
    try:
        threads = [threading.Thread(target=count) for _ in range(2)] + [threading.Thread(target=embed)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[0]
    assert counts and set(counts) == {expected_count}
    assert expected_count == 288  # the third text is cut at max_tokens (256)


def test_a_tokenizer_copy_is_independent(embedder):
    copy = embedder.tokenizer_copy()
    assert copy.truncation is None and copy.padding is None
    assert copy.encode("hello world").ids == embedder.model.tokenizer("hello world")["input_ids"]
