"""Adapters served by vLLM (multi-LoRA): the engine's options, the base check by card, and requests routed
by model name (against a scripted stand-in for vLLM's server; tests/server/test_vllm_server.py runs the
real engine with an adapter)."""

from __future__ import annotations

import json

import pytest

from clearlm.errors import InvalidInputError
from clearlm.models import Message, SamplingParams
from clearlm.models.backends.base import generate
from clearlm.models.backends.vllm_backend import VllmBackend
from clearlm.models.backends.vllm_engine import lora_args
from clearlm.models.catalog import get_spec
from clearlm.tune.lora_modules import lora_modules
from clearlm.tune.router import AdapterRouter
from clearlm.tune.serve import AdapterMismatchError
from models.test_vllm_backend import FakeVllm

QWEN = "qwen2.5-0.5b-instruct"


def _peft(folder, r: int, **extra):
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": r, "peft_type": "LORA", **extra}))
    return folder


def _adapter(home, name: str, base: str, gguf_sha256: str | None = None):
    folder = _peft(home / "adapters" / name, 4)
    card = {"name": name, "base": {"name": base, "gguf_sha256": gguf_sha256, "weights_sha256": "x"}}
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def test_lora_args_bound_the_rank_and_name_each_adapter(tmp_path):
    a, b = _peft(tmp_path / "a", 4), _peft(tmp_path / "b", 12, rank_pattern={"q_proj": 20})
    assert lora_args({"a": a}) == [
        "--enable-lora", "--lora-modules", f"a={a}", "--max-loras", "1", "--max-lora-rank", "8",
    ]  # fmt: skip
    assert lora_args({"a": a, "b": b})[-5:] == [f"b={b}", "--max-loras", "2", "--max-lora-rank", "32"]
    with pytest.raises(InvalidInputError, match="vLLM serves LoRA ranks up to 512, not 1024"):
        lora_args({"c": _peft(tmp_path / "c", 1024)})
    with pytest.raises(InvalidInputError, match="LoRA adapter 'd': .* holds no PEFT adapter_config.json"):
        lora_args({"d": tmp_path})


def test_adapters_for_vllm_must_name_the_served_base(home, tmp_path):
    spec = get_spec(QWEN)
    one = _adapter(home, "one", QWEN, spec.sha256)
    two = _adapter(home, "two", "gemma-3-270m", get_spec("gemma-3-270m").sha256)
    folder = tmp_path / "base"
    folder.mkdir()
    three = _adapter(home, "three", str(folder))
    assert lora_modules(QWEN, ["one"]) == {"one": one}
    assert lora_modules(str(tmp_path / "." / "base"), ["three"]) == {"three": three}
    with pytest.raises(AdapterMismatchError, match="'two' was trained on gemma-3-270m, not on qwen2.5"):
        lora_modules(QWEN, ["one", "two"])
    with pytest.raises(AdapterMismatchError, match="'three' was trained on .*base, not on qwen2.5"):
        lora_modules(QWEN, ["three"])
    assert two.is_dir()


def test_requests_reach_vllm_under_the_adapters_name(tiny_tokenizer):
    server = FakeVllm(tiny_tokenizer.encode("Lyon", add_special_tokens=False))
    try:
        base = VllmBackend.connect(server.url, tiny_tokenizer, "tiny")
        router = AdapterRouter(base, ["one", "two"])
        assert router.kind == "vllm" and router.served == ["tiny", "tiny:one", "tiny:two"]
        prompt = [Message("user", "Capital of France?")]
        for model, sent in (("tiny:one", "one"), ("two", "two"), ("tiny", "served-name")):
            view = router.select(model)
            assert generate(view, prompt, SamplingParams(max_new_tokens=10)).text == "Lyon"
            assert server.bodies[-1]["model"] == sent and router.name == view.name
        router.views["one"].close()  # a view closes nothing: the base's client still works
        assert generate(router.views[None], prompt, SamplingParams(max_new_tokens=1)).token_ids
    finally:
        server.stop()


def test_serve_refuses_adapters_it_cannot_serve_before_loading(home, clearlm):
    _adapter(home, "two", "gemma-3-270m", get_spec("gemma-3-270m").sha256)
    db = f"sqlite:///{home / 'db.sqlite'}"
    for args, message in (
        (["--backend", "llamacpp"], "--adapter needs the torch or vllm backend"),
        (["--backend", "vllm"], "adapter 'two' was trained on gemma-3-270m, not on qwen2.5-0.5b-instruct"),
    ):
        run = clearlm("serve", "--model", QWEN, "--db", db, "--adapter", "two", *args)
        assert run.returncode != 0 and message in run.stderr and "Traceback" not in run.stderr
