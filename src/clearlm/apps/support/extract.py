"""Slot extraction: from the customer's words to slot values the flow then validates.

The model extracts them later, through the pipeline (an :class:`Extractor` that asks it); the default,
:class:`PatternExtractor`, is deterministic: it finds an ask step's enum values and pattern matches in
the text, and takes the whole answer for the pending question when that has no enum or pattern.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Protocol

from clearlm.apps.support.flows import Ask, Flow
from clearlm.apps.support.intents import CANCEL_WORDS, HANDOFF_WORDS, intent_of
from clearlm.apps.support.state import FlowState

__all__ = [
    "CANCEL_WORDS",
    "HANDOFF_WORDS",
    "Extractor",
    "PatternExtractor",
    "intent_of",
    "pending_ask",
    "supported",
]


class Extractor(Protocol):
    """Turns a customer's message into ``{slot: value}`` for the flow's ask slots. It proposes; the flow
    validates each value and re-asks the pending question when its value is missing or invalid."""

    def extract(self, flow: Flow, state: FlowState, text: str) -> dict[str, Any]: ...


def pending_ask(flow: Flow, state: FlowState) -> Ask | None:
    """The ask step waiting for the customer's answer, or None."""
    if state.waiting != "slot" or state.step is None:
        return None
    return flow.step(state.step).ask


class PatternExtractor:
    """Deterministic extraction. For every ask slot of the flow: the one enum value named in the text
    (case- and accent-insensitive; ``wrong_item`` also matches "wrong item"; or named by one of the
    ask's ``synonyms``: "broken" for ``damaged``), else the first match of its
    ``pattern`` standing as a word of its own. For the pending question only, when it has neither: the
    text parsed as JSON if it is JSON (a number, a list), else the stripped text."""

    def extract(self, flow: Flow, state: FlowState, text: str) -> dict[str, Any]:
        pending = pending_ask(flow, state)
        out: dict[str, Any] = {}
        for name, spec in flow.slots().items():
            if not isinstance(spec, Ask):
                continue
            value = _enum_value(spec, text) if spec.enum else None
            if value is None and spec.pattern:
                value = _pattern_value(spec.pattern, text)
            if value is None and spec is pending and not spec.enum and not spec.pattern:
                value = _free_value(text, bool(spec.json_schema))
            if value is not None:
                out[name] = value
        return out


def _plain(text: str) -> str:
    """``text`` lower-case without accents ("Dañado" -> "danado")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(value: str) -> list[str]:
    """The words of ``value`` (split at anything not a letter or digit, ``_`` included), plain."""
    return [w for w in re.split(r"[\W_]+", _plain(value)) if w]


def _phrase_in(phrase: str, said: str) -> bool:
    words = _words(phrase)
    return bool(words) and f" {' '.join(words)} " in said


def _names(spec: Ask, value: Any) -> list[str]:
    """The phrases that name an enum ``value``: the value itself and its synonyms."""
    return [str(value), *spec.synonyms.get(str(value), [])]


def _enum_value(spec: Ask, text: str) -> Any:
    said = f" {' '.join(_words(text))} "
    found = [v for v in spec.enum if any(_phrase_in(n, said) for n in _names(spec, v))]
    return found[0] if len(found) == 1 else None


def _stem(word: str) -> str:
    """A crude stem: a word of 5+ letters without its last two ("damaged" -> "damag"), so that
    "damage", "damaging" and "damaged" meet; shorter words whole (no stemmer library is installed)."""
    return word[: max(4, len(word) - 2)] if len(word) >= 5 else word


def supported(spec: Ask, value: Any, text: str) -> bool:
    """Whether the customer's ``text`` supports ``value`` (the check on a value the model extracted, which
    may map nonsense or an injected order onto an allowed value). An enum value: the text holds one of
    its names whole (:func:`_names`: the value, ``wrong_item`` also as "wrong item", its synonyms), or a
    word of 3+ letters of the value or a one-word synonym up to a crude stem (:func:`_stem`: "damage"
    supports ``damaged``, "wrong" ``wrong_item``, "broke" the synonym "broken"); accents never count.
    A pattern value: its letters and digits appear in the text's, in order and together ("a 10002"
    supports ``A-10002``). Anything else (a JSON Schema's number, free text): True."""
    if spec.enum:
        said = f" {' '.join(_words(text))} "
        if any(_phrase_in(n, said) for n in _names(spec, value)):
            return True
        single = [n for n in spec.synonyms.get(str(value), []) if len(_words(n)) == 1]
        named = {_stem(w) for n in [str(value), *single] for w in _words(n) if len(w) >= 3}
        return any(word.startswith(stem) for word in _words(text) for stem in named)
    if spec.pattern:
        return "".join(_words(str(value))) in "".join(_words(text))
    return True


def _pattern_value(pattern: str, text: str) -> str | None:
    for m in re.finditer(pattern, text):
        before = text[m.start() - 1] if m.start() > 0 else " "
        after = text[m.end()] if m.end() < len(text) else " "
        if m.group(0) and not (before.isalnum() or after.isalnum()):
            return m.group(0)
    return None


def _free_value(text: str, as_json: bool) -> Any:
    text = text.strip()
    if not text:
        return None
    if as_json:
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
