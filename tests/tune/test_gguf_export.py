"""Export of a merged adapter as GGUF with llama.cpp's own converter: llama.cpp computes the merged torch
model's log-probabilities; the converter's failures and a missing converter are clear errors that leave
nothing behind.

The tiny random model here has the real Qwen2.5 tokenizer (151,936 tokens; the converter recognises a
tokenizer by hashing what it makes of a fixed text, so a tokenizer trained for a test is refused, as the
last test shows), 2 layers of width 32: 39 MB in float32.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.tune import TuneConfig, tune
from clearlm.tune import gguf as gguf_export
from clearlm.tune.export import export_gguf
from clearlm.tune.serve import AdapterSet
from conftest import make_model

CONFIG = TuneConfig(
    steps=4, seq_len=32, learning_rate=2e-2, warmup_steps=0, checkpoint_every=0, eval_tokens=64
)
TEXT = "The Eiffel Tower is located in the city of Paris, France. Ünïcødé 123 😀"
# llama.cpp and torch both compute in float32 but in other orders (llama.cpp's SIMD kernels, its own RMS
# norm, RoPE and softmax): measured 5e-5 nats apart on this model; 5e-4 leaves a margin for other CPUs'
# kernels and is far below what the adapter changes (asserted below).
TOLERANCE = 5e-4


@pytest.fixture(scope="module")
def converter():
    """llama.cpp's converter (``make gguf-converter``), found before a test moves $CLEARLM_HOME."""
    try:
        return gguf_export.find_converter()
    except BackendUnavailableError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def qwen_tokenizer():
    from transformers import AutoTokenizer

    from clearlm.models import assemble
    from clearlm.models.catalog import DEFAULT_MODEL, get_spec
    from clearlm.models.pull import ensure_checkpoint

    spec = get_spec(DEFAULT_MODEL)
    if assemble.missing_packages(spec) and not os.environ.get("CI"):
        pytest.skip(f"{DEFAULT_MODEL} is not installed")
    return AutoTokenizer.from_pretrained(ensure_checkpoint(spec))


def _logprobs(model, ids: list[int]) -> np.ndarray:
    """log p(ids[t] | ids[:t]) for t >= 1: float64[len(ids) - 1]."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].double()
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0].numpy()


@pytest.mark.llamacpp
def test_gguf_export_has_the_merged_models_logprobs(
    converter, qwen_tokenizer, home, tmp_path, docs, email_policy, clearlm, monkeypatch
):
    from llama_cpp import Llama

    from clearlm.models.backends.llamacpp_backend import LlamaCppBackend
    from clearlm.tune.base import load_base

    monkeypatch.setenv(gguf_export.CONVERTER_ENV, str(converter))
    folder = tmp_path / "tiny-qwen"
    make_model(qwen_tokenizer, dtype=torch.float32).save_pretrained(folder)
    qwen_tokenizer.save_pretrained(folder)
    base = load_base(str(folder))
    ids = qwen_tokenizer(TEXT)["input_ids"]
    plain = _logprobs(base.model, ids)
    tune("dom", base, docs, CONFIG, policy=email_policy)
    adapters = AdapterSet(base)
    view = adapters.load("dom")
    with adapters.lock:
        adapters.activate("dom")
        adapted = _logprobs(view.model, ids)
    assert np.abs(adapted - plain).max() > 20 * TOLERANCE  # the adapter changes the predictions

    out = tmp_path / "out" / "dom-f32.gguf"
    run = clearlm("adapters", "export", "dom", out, "--format", "gguf", "--outtype", "f32")
    assert run.returncode == 0, run.stderr
    assert f"written to {out} (f32)" in run.stdout.replace("\n", "")
    assert sorted(p.name for p in out.parent.iterdir()) == ["dom-f32.gguf"]  # no temporary left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's private one
    llm = Llama(str(out), n_ctx=64, n_threads=1, logits_all=True, verbose=False)
    assert llm.metadata["tokenizer.ggml.pre"] == "qwen2"  # the converter knew the tokenizer
    assert llm.tokenize(TEXT.encode(), add_bos=False, special=True) == ids
    llm.eval(ids)
    logits = torch.tensor(np.asarray(llm.scores[: len(ids) - 1]), dtype=torch.float64)
    got = torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0].numpy()
    assert np.abs(got - adapted).max() < TOLERANCE, np.abs(got - adapted).max()

    # clearlm's llamacpp backend serves the file and scores the same (given the tokenizer: from the file
    # alone, `load_backend(path, "llamacpp")` rebuilds it with transformers, ~30 s for 151,936 tokens)
    served = LlamaCppBackend(out, qwen_tokenizer, "dom", n_threads=1, n_ctx=64)
    scored = served.response_logprobs([ids[:1]], ids[1:])[0]
    assert np.abs(scored - adapted).max() < TOLERANCE

    # the file exists now: refused without --overwrite, before anything loads
    run = clearlm("adapters", "export", "dom", out, "--format", "gguf")
    assert run.returncode != 0 and "exists: choose another file, or pass --overwrite" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_missing_converter_and_bad_destinations(home, tmp_path, tiny_base, monkeypatch, clearlm):
    monkeypatch.setenv(gguf_export.CONVERTER_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(BackendUnavailableError, match="run `make gguf-converter`"):
        gguf_export.find_converter()
    monkeypatch.delenv(gguf_export.CONVERTER_ENV)
    with pytest.raises(
        BackendUnavailableError, match="not at .*engines/llama.cpp: run `make gguf-converter`"
    ):
        export_gguf("dom", tiny_base, tmp_path / "x.gguf")  # $CLEARLM_HOME has no converter
    with pytest.raises(InvalidInputError, match="give a path ending in .gguf"):
        export_gguf("dom", tiny_base, tmp_path / "x.bin")
    (tmp_path / "d.gguf").mkdir()
    with pytest.raises(InvalidInputError, match="is a folder"):
        export_gguf("dom", tiny_base, tmp_path / "d.gguf")
    with pytest.raises(InvalidInputError, match="unknown GGUF type 'q4'"):
        export_gguf("dom", tiny_base, tmp_path / "x.gguf", outtype="q4")
    assert not (tmp_path / "x.gguf").exists()

    (home / "adapters" / "dom").mkdir(parents=True)
    (home / "adapters" / "dom" / "card.json").write_text('{"base": {"name": "tiny"}}')
    for args, message in (
        (["--format", "onnx"], "unknown --format 'onnx': choose transformers or gguf"),
        (["--format", "gguf", "--outtype", "q4"], "unknown --outtype 'q4'"),
        (["--format", "gguf"], "run `make gguf-converter`"),
    ):
        run = clearlm("adapters", "export", "dom", tmp_path / "y.gguf", *args)
        assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr


def test_a_tokenizer_the_converter_does_not_know_fails_and_leaves_nothing(
    converter, home, tmp_path, tiny_base, docs, email_policy, monkeypatch
):
    monkeypatch.setenv(gguf_export.CONVERTER_ENV, str(converter))
    tune("tiny", tiny_base, docs, TuneConfig(**{**CONFIG.to_dict(), "steps": 1}), policy=email_policy)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(gguf_export.GgufConversionError, match="BPE pre-tokenizer was not recognized"):
        export_gguf("tiny", tiny_base, out / "tiny.gguf")
    assert list(out.iterdir()) == []  # no GGUF, no partial file, no merged checkpoint
