"""load_backend: its errors, and loading a local transformers folder (the tiny model, never a real one)."""

from __future__ import annotations

import sys

import pytest
import torch

from clearlm.errors import BackendUnavailableError, ModelNotFoundError
from clearlm.models import assemble as asm
from clearlm.models import loader
from clearlm.models.backends.base import SamplingParams, generate
from clearlm.models.backends.torch_backend import TorchBackend
from clearlm.models.catalog import CATALOG, DEFAULT_MODEL, get_spec
from clearlm.models.loader import BACKENDS, DTYPES, load_backend
from conftest import make_model, make_tokenizer


@pytest.fixture
def no_pull(monkeypatch):
    """Fail the test instead of assembling or converting a real model, should a guard be missing."""

    def refuse(*args, **kwargs):
        raise AssertionError("a real model was about to be assembled or converted")

    monkeypatch.setattr(loader, "ensure_gguf", refuse)
    monkeypatch.setattr(loader, "ensure_checkpoint", refuse)


def test_unknown_name_lists_the_catalog(no_pull):
    with pytest.raises(ModelNotFoundError) as info:
        load_backend("no-such-model")
    for name in CATALOG:
        assert name in str(info.value)


@pytest.mark.parametrize("relative", ["./nope", "./nope.gguf", "nope.gguf"])
def test_a_missing_relative_path(relative, tmp_path, monkeypatch, no_pull):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="check the path"):
        load_backend(relative)


def test_a_missing_absolute_gguf(tmp_path, no_pull):
    missing = tmp_path / "does-not-exist.gguf"
    with pytest.raises(ModelNotFoundError, match="does-not-exist.gguf"):
        load_backend(str(missing))


def test_a_hub_id_that_cannot_be_found_offline(monkeypatch, no_pull):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="clearlm-test/no-such-model"):
        load_backend("clearlm-test/no-such-model")


def test_a_catalog_model_whose_packages_are_missing_says_to_pull(no_pull):
    name = "qwen2.5-1.5b-instruct"
    if not asm.missing_packages(get_spec(name)):
        pytest.skip(f"{name} is installed here")
    with pytest.raises(ModelNotFoundError, match=f"clearlm models pull {name}"):
        load_backend(name)


def test_unknown_backend(no_pull):
    with pytest.raises(BackendUnavailableError) as info:
        load_backend(DEFAULT_MODEL, backend="onnx")
    assert "'onnx'" in str(info.value)
    for backend in BACKENDS:
        assert backend in str(info.value)


def test_unknown_dtype(no_pull):
    with pytest.raises(BackendUnavailableError) as info:
        load_backend(DEFAULT_MODEL, dtype="int8")
    assert "'int8'" in str(info.value)
    for dtype in DTYPES:
        assert dtype in str(info.value)


@pytest.fixture
def no_llama_cpp(monkeypatch):
    """Make ``import llama_cpp`` fail whether or not llama-cpp-python is installed."""
    monkeypatch.setitem(sys.modules, "llama_cpp", None)


@pytest.mark.parametrize("model", [DEFAULT_MODEL, "gguf"])
def test_llamacpp_without_llama_cpp_says_how_to_install(model, tmp_path, no_llama_cpp, no_pull):
    if model == "gguf":  # a file that is not a real GGUF: loading its tokenizer would fail differently
        path = tmp_path / "model.gguf"
        path.write_bytes(b"GGUF not really")
        model = str(path)
    with pytest.raises(BackendUnavailableError) as info:
        load_backend(model, backend="llamacpp")
    assert "pip install 'clearlm[llamacpp]'" in str(info.value)
    assert "--backend torch" in str(info.value)


def test_llamacpp_backend_class_without_llama_cpp(tmp_path, no_llama_cpp):
    from clearlm.models.backends.llamacpp_backend import LlamaCppBackend

    with pytest.raises(BackendUnavailableError, match="llama-cpp-python"):
        LlamaCppBackend(tmp_path / "m.gguf", None, "m")


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    """The tiny model and tokenizer, and the folder they were saved to with save_pretrained."""
    tokenizer = make_tokenizer()
    model = make_model(tokenizer, seed=1)
    folder = tmp_path_factory.mktemp("tiny-checkpoint")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer, folder


def test_load_a_local_transformers_folder(saved_tiny):
    model, tokenizer, folder = saved_tiny
    backend = load_backend(str(folder), dtype="float64")

    assert isinstance(backend, TorchBackend)
    assert backend.kind == "torch"
    assert backend.name == str(folder)
    assert backend.context_length == 256
    assert backend.model.dtype == torch.float64
    assert backend.eos_token_ids == {
        tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")
    }
    for key, value in model.state_dict().items():
        assert torch.equal(backend.model.state_dict()[key], value), key

    original = TorchBackend(model, tokenizer, "original")
    params = SamplingParams(max_new_tokens=10)
    for prompt in ("The capital of Italy is", "Why is the sky blue?"):
        ours, theirs = generate(backend, prompt, params), generate(original, prompt, params)
        assert ours.token_ids == theirs.token_ids
        assert ours.text == theirs.text
        assert ours.prompt_tokens == theirs.prompt_tokens > 0
        assert len(ours.token_ids) > 0


def test_load_a_local_folder_in_float32(saved_tiny):
    _, _, folder = saved_tiny
    backend = load_backend(str(folder))
    assert backend.model.dtype == torch.float32


def test_an_empty_folder_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="cannot load model"):
        load_backend(str(tmp_path))
