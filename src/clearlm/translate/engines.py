"""The engines by name, and ``auto``: the best installed engine for each pair.

- ``apertium``: rule-based (Debian's pairs); ``bergamot``: the tiny Marian models (en <-> pt);
- ``llm``: the chat model, a pipeline turn per sentence; ``hybrid``: the draft engine's translation
  post-edited by the chat model (draft: Bergamot where it has the pair, else Apertium);
- ``auto``: for each pair the engine measured best (benchmarks/bench_translation.py, test split, chrF):
  Bergamot where it has the pair (en-pt 76.9; post-edited by qwen2.5-1.5b 76.5: the model does not
  improve it); the LLM alone for a model listed in :data:`LLM_FIRST` (qwen2.5-1.5b en-es 69.6 against
  its hybrid's 65.1 on the dev split and Apertium's 61.0); else the hybrid with Apertium's draft when a
  model is given (qwen2.5-0.5b en-es 61.9 against Apertium 61.0 and the 0.5b alone 53.2 on dev); the LLM
  for pairs no other engine has; Apertium without a model.
"""

from __future__ import annotations

import functools

from clearlm.errors import BackendUnavailableError
from clearlm.translate.apertium import ApertiumEngine
from clearlm.translate.base import Pair, UnknownEngineError, check_pair
from clearlm.translate.bergamot import BergamotEngine
from clearlm.translate.llm import HybridEngine, LLMEngine

ENGINES = ("auto", "apertium", "bergamot", "llm", "hybrid")
LLM_FIRST = {"qwen2.5-1.5b-instruct": ("en-es",)}  # models that translate these pairs best alone
NEEDS_MODEL = frozenset({"llm", "hybrid"})


@functools.cache
def apertium() -> ApertiumEngine:
    """The process's Apertium engine (its modes listed once)."""
    return ApertiumEngine()


@functools.cache
def bergamot() -> BergamotEngine:
    """The process's Bergamot engine (its models loaded once, on first use)."""
    return BergamotEngine()


class DraftEngine:
    """Bergamot where it has the pair (en <-> pt: chrF 78.0 against Apertium's 53.5 through Spanish on
    the test set), else Apertium: the hybrid's draft."""

    name = "draft"

    def pairs(self) -> list[Pair]:
        return sorted(set(apertium().pairs()) | set(bergamot().pairs()))

    def pick(self, pair: Pair):
        return bergamot() if pair in bergamot().pairs() else apertium()

    def translate(self, sentences: list[str], source: str, target: str) -> list[str]:
        pair = check_pair(self, source, target)
        return self.pick(pair).translate(sentences, pair.source, pair.target)


class AutoEngine:
    """The best engine for each pair (see the module's description); ``chosen(source, target)`` names it."""

    name = "auto"

    def __init__(self, llm: LLMEngine | None) -> None:
        self.llm = llm
        self.hybrid = HybridEngine(DraftEngine(), llm) if llm is not None else None

    @property
    def request_ids(self) -> list[str]:
        """The audit records of the model's turns (none when another engine translated)."""
        return self.llm.request_ids if self.llm is not None else []

    def _order(self, pair: Pair | None = None):
        alone = self.llm is not None and str(pair) in LLM_FIRST.get(self.llm.backend.name, ())
        order = (bergamot(), self.llm, self.hybrid) if alone else (bergamot(), self.hybrid, self.llm)
        return [e for e in (*order, apertium()) if e is not None]

    def pairs(self) -> list[Pair]:
        return sorted({p for e in self._order() for p in e.pairs()})

    def chosen(self, source: str, target: str):
        """The engine that translates this pair. Raises UnsupportedPairError."""
        pair = check_pair(self, source, target)
        return next(e for e in self._order(pair) if pair in e.pairs())

    def translate(self, sentences: list[str], source: str, target: str) -> list[str]:
        return self.chosen(source, target).translate(sentences, source, target)


def make_engine(name: str = "auto", llm: LLMEngine | None = None):
    """The engine called ``name`` (one of :data:`ENGINES`); ``llm`` (an :class:`LLMEngine` on the
    pipeline) for ``llm``, ``hybrid`` and ``auto``.

    Raises:
        UnknownEngineError: another name. BackendUnavailableError: ``llm``/``hybrid`` without a model.
    """
    if name not in ENGINES:
        raise UnknownEngineError(f"unknown translation engine {name!r}: choose one of {', '.join(ENGINES)}")
    if name in NEEDS_MODEL and llm is None:
        raise BackendUnavailableError(
            f"the {name} engine needs a chat model: give --model (or a served model)"
        )
    if name == "apertium":
        return apertium()
    if name == "bergamot":
        return bergamot()
    if name == "llm":
        return llm
    if name == "hybrid":
        return HybridEngine(DraftEngine(), llm)
    return AutoEngine(llm)


def describe_engines(with_model: bool) -> list[dict]:
    """Each engine: ``name``, ``available`` (installed; a model given for llm/hybrid), ``pairs`` (as
    ``"en-es"``), ``needs_model``, and for Apertium its ``pivots`` (pairs through Spanish)."""
    model_pairs = [str(p) for p in LLMEngine(None).pairs()]
    draft = [str(p) for p in DraftEngine().pairs() if str(p) in model_pairs]
    rows = [
        {"name": "apertium", "available": apertium().available(), "pairs": [str(p) for p in apertium().pairs()],
         "pivots": [str(p) for p in apertium().pivots()], "needs_model": False},
        {"name": "bergamot", "available": bergamot().available(), "pairs": [str(p) for p in bergamot().pairs()],
         "needs_model": False},
        {"name": "llm", "available": with_model, "pairs": model_pairs, "needs_model": True},
        {"name": "hybrid", "available": with_model and bool(draft), "pairs": draft, "needs_model": True},
    ]  # fmt: skip
    auto = sorted({p for r in rows if r["available"] for p in r["pairs"]})
    return [{"name": "auto", "available": bool(auto), "pairs": auto, "needs_model": False}, *rows]
