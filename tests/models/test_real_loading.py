"""Loading the real packaged weights by other routes than the catalog name."""

from __future__ import annotations

import pytest

from clearlm.models import SamplingParams, cache, generate, load_backend

pytestmark = pytest.mark.integration


def test_a_local_gguf_file_loads_and_generates():
    """The assembled GGUF of gemma-3-270m (pulled by `make test`), loaded as a plain file path."""
    path = cache.gguf_path("gemma-3-270m")
    backend = load_backend(str(path))
    assert backend.name == str(path)
    out = generate(backend, "The Eiffel Tower is located in the city of", SamplingParams(max_new_tokens=3))
    assert "Paris" in out.text


def test_the_converted_checkpoint_folder_loads_like_the_catalog_name():
    by_name = load_backend("gemma-3-270m")
    by_folder = load_backend(str(cache.checkpoint_dir("gemma-3-270m")))
    prompt = "The capital of Italy is"
    params = SamplingParams(max_new_tokens=5)
    assert generate(by_name, prompt, params).token_ids == generate(by_folder, prompt, params).token_ids
