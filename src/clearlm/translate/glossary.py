"""A glossary: source term -> target term, for terms a translation must keep (product names, a course's
vocabulary, a shop's words for its things). Read from YAML (a mapping, or a list of ``{source, target}``)
or CSV (two columns, an optional ``source,target`` header).

The LLM engines put the terms a sentence contains into their prompt (:meth:`Glossary.prompt_lines`);
every engine's output is then checked (:meth:`Glossary.check`): a term of the source sentence whose
target term is not in the translation is reported for that sentence, never dropped silently. Matching is
case-insensitive, on whole words (the target term also matches with its first letter capitalised at a
sentence start, and ignoring a plural -s/-es).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from clearlm.errors import InvalidInputError

MAX_TERMS = 5000
MAX_TERM_CHARS = 200


class GlossaryError(InvalidInputError):
    """A glossary file that cannot be read; the message names the file and the entry."""

    code = "invalid_glossary"


@dataclass(frozen=True, slots=True)
class GlossaryIssue:
    """A term of the source sentence whose required ``target`` term is not in its translation."""

    source: str
    target: str

    def to_dict(self) -> dict:
        return {"source": self.source, "target": self.target}


def _pattern(term: str) -> re.Pattern:
    words = r"\s+".join(re.escape(w) for w in term.split())
    return re.compile(rf"(?<!\w){words}(?:e?s)?(?!\w)", re.IGNORECASE)


class Glossary:
    """Terms to keep: ``terms`` {source term: target term}."""

    def __init__(self, terms: dict[str, str]) -> None:
        if len(terms) > MAX_TERMS:
            raise GlossaryError(f"a glossary holds at most {MAX_TERMS} terms, this one {len(terms)}")
        for s, t in terms.items():
            if not s.strip() or not t.strip():
                raise GlossaryError(f"glossary entry {s!r} -> {t!r}: both terms must be non-empty")
            if len(s) > MAX_TERM_CHARS or len(t) > MAX_TERM_CHARS:
                raise GlossaryError(
                    f"glossary entry {s[:40]!r}: a term has at most {MAX_TERM_CHARS} characters"
                )
        # longest first: "order number" is found before "order"
        self.terms = dict(
            sorted(((s.strip(), t.strip()) for s, t in terms.items()), key=lambda x: -len(x[0]))
        )
        self._source = {s: _pattern(s) for s in self.terms}
        self._target = {t: _pattern(t) for t in self.terms.values()}

    def __len__(self) -> int:
        return len(self.terms)

    def found(self, sentence: str) -> dict[str, str]:
        """The entries whose source term occurs in ``sentence`` (a longer term hides the shorter ones it
        contains)."""
        out, taken = {}, []
        for s, t in self.terms.items():
            for m in self._source[s].finditer(sentence):
                if not any(a < m.end() and m.start() < b for a, b in taken):
                    out[s] = t
                    taken.append(m.span())
        return out

    def prompt_lines(self, sentence: str) -> list[str]:
        """``"source" -> "target"`` for each term of ``sentence``: what an LLM prompt lists."""
        return [f'"{s}" -> "{t}"' for s, t in self.found(sentence).items()]

    def check(self, sentence: str, translation: str) -> list[GlossaryIssue]:
        """The terms of ``sentence`` whose target term is missing from ``translation``."""
        return [
            GlossaryIssue(s, t)
            for s, t in self.found(sentence).items()
            if not self._target[t].search(translation)
        ]


def parse_glossary(text: str, name: str = "glossary") -> Glossary:
    """A glossary from YAML or CSV text (YAML when it parses to a mapping or a list, else CSV).

    Raises:
        GlossaryError: neither shape, an entry without both terms, too many or too long terms.
    """
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and data:
        return Glossary({str(k): str(v) for k, v in data.items() if v is not None} | _nulls(data, name))
    if isinstance(data, list) and data and all(isinstance(e, dict) for e in data):
        terms = {}
        for n, entry in enumerate(data, 1):
            if not entry.get("source") or not entry.get("target"):
                raise GlossaryError(f"{name}: entry {n} needs both 'source' and 'target'")
            terms[str(entry["source"])] = str(entry["target"])
        return Glossary(terms)
    terms = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or all(not c.strip() for c in row):
            continue
        if n == 1 and [c.strip().lower() for c in row[:2]] == ["source", "target"]:
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise GlossaryError(
                f"{name}: line {n} is not 'source term,target term' (write YAML `term: translation` "
                "or CSV with two columns)"
            )
        terms[row[0]] = row[1]
    if not terms:
        raise GlossaryError(f"{name} has no terms: write lines such as `order number: número de pedido`")
    return Glossary(terms)


def _nulls(data: dict, name: str) -> dict:
    empty = [k for k, v in data.items() if v is None]
    if empty:
        raise GlossaryError(f"{name}: term {empty[0]!r} has no translation")
    return {}


def load_glossary(path: str | Path) -> Glossary:
    """:func:`parse_glossary` on a UTF-8 file.

    Raises:
        GlossaryError: unreadable, not UTF-8, or not a glossary.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GlossaryError(f"cannot read the glossary {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GlossaryError(f"the glossary {path} is not UTF-8 text: convert it first") from None
    return parse_glossary(text, str(path))
