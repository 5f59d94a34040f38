"""The one interface every translation engine has (:class:`Engine`), language codes, and the errors a
user can cause.

An engine translates a list of sentences between two languages it supports; :func:`check_pair` refuses a
pair it does not support with a message naming the pairs it does. Language codes are ISO 639-1 (``en``,
``es``, ``pt``); ISO 639-3 codes (``eng``, ``spa``) and region tags (``pt-BR``, ``es_ES``) are accepted
and reduced to ISO 639-1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from clearlm.errors import ClearlmError, InvalidInputError

# ISO 639-3 (Apertium's names) -> ISO 639-1, for the languages of Debian's Apertium pairs and the models.
ISO3 = {
    "eng": "en", "spa": "es", "por": "pt", "cat": "ca", "glg": "gl", "fra": "fr", "ita": "it",
    "ron": "ro", "arg": "an", "ast": "ast", "epo": "eo", "oci": "oc", "eus": "eu", "deu": "de",
    "nld": "nl", "isl": "is", "mkd": "mk", "hbs": "sh", "swe": "sv", "dan": "da", "nob": "nb",
    "nno": "nn", "bel": "be", "rus": "ru", "ukr": "uk", "pol": "pl", "ces": "cs", "slk": "sk",
}  # fmt: skip
NAMES = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ca": "Catalan", "gl": "Galician",
    "fr": "French", "it": "Italian", "ro": "Romanian", "eo": "Esperanto", "oc": "Occitan",
    "eu": "Basque", "de": "German", "nl": "Dutch", "an": "Aragonese", "ast": "Asturian",
}  # fmt: skip
_CODE = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{2,8})*$")


class UnsupportedPairError(InvalidInputError):
    """A language pair the chosen engine cannot translate; the message names the pairs it can."""

    code = "unsupported_language_pair"


class UnknownEngineError(InvalidInputError):
    """An engine name that is not one of clearlm's engines."""

    code = "unknown_engine"


class TranslationError(ClearlmError):
    """An engine that failed on its input (an engine program that crashed, a model that gave nothing)."""

    status_code = 422
    code = "translation_failed"


def language(code: str, what: str = "language") -> str:
    """``code`` as ISO 639-1 lower case (``eng`` -> ``en``, ``pt-BR`` -> ``pt``).

    Raises:
        InvalidInputError: not a language code (2-3 letters, optionally a region tag).
    """
    found = _CODE.match((code or "").strip())
    if found is None:
        raise InvalidInputError(
            f"{what} {code!r} is not a language code: use ISO 639-1, such as 'en', 'es' or 'pt'"
        )
    base = found.group(1).lower()
    return ISO3.get(base, base)


def language_name(code: str) -> str:
    """The English name of a code (``es`` -> ``Spanish``); the code itself when unknown."""
    code = language(code)
    if code in NAMES:
        return NAMES[code]
    try:
        from lingua import IsoCode639_1, Language

        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code)).name.title()
    except (ImportError, ValueError):
        return code


@dataclass(frozen=True, slots=True, order=True)
class Pair:
    """A translation direction: ``source`` -> ``target`` (ISO 639-1)."""

    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.source}-{self.target}"


@runtime_checkable
class Engine(Protocol):
    """A translation engine. ``name``: its name in clearlm (``apertium``, ``bergamot``, ``llm``,
    ``hybrid``).

    ``pairs()`` lists the directions it supports; ``translate(sentences, source, target)`` returns one
    translation per sentence, in order (``list[str]`` of the same length). It raises
    :class:`UnsupportedPairError` for a pair not in ``pairs()`` and :class:`TranslationError` when it fails.
    """

    name: str

    def pairs(self) -> list[Pair]: ...

    def translate(self, sentences: list[str], source: str, target: str) -> list[str]: ...


def check_pair(engine: Engine, source: str, target: str) -> Pair:
    """The pair ``source`` -> ``target`` (normalised) if ``engine`` supports it.

    Raises:
        InvalidInputError: a bad code, or source and target the same.
        UnsupportedPairError: a pair the engine lacks (the message lists the pairs it has).
    """
    pair = Pair(language(source, "source language"), language(target, "target language"))
    if pair.source == pair.target:
        raise InvalidInputError(f"the source and target languages are both {pair.source!r}: choose two")
    have = engine.pairs()
    if pair not in have:
        listed = ", ".join(str(p) for p in sorted(have)) or "none (is the engine installed?)"
        raise UnsupportedPairError(
            f"the {engine.name} engine cannot translate {pair}: its pairs are {listed}"
            + (" (choose another --engine, or install the pair)" if have else "")
        )
    return pair


def one_line(sentence: str) -> str:
    """A sentence on one line (engines that read a line per sentence): runs of whitespace as one space."""
    return " ".join(sentence.split())
