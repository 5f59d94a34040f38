"""Act on the evidence of a cited answer: re-point a citation to the passage the answer took its words from
(or, with context attribution, relied on), and abstain when nothing supports the answer.

The rules (``correct``), in order:

0. An answer that quotes the prompt's worked example (``EXAMPLE_LEAK`` characters or more of its text
   that no real passage holds) becomes the abstention, recorded {"kind": "abstained", "by": "example"}.
1. An answer that abstains (``quotes.is_abstention``) becomes exactly ``NO_ANSWER``, citing nothing (the
   model's own abstention: not recorded as a correction).
2. With attribution: when the answer relied on no passage (no weight reaches the threshold), it becomes
   the abstention; else, when exactly one passage was relied on but not cited, every cited passage that
   was not relied on is re-pointed to it.
3. Without attribution: a citation whose sentence quotes nothing (fewer than ``quotes.MIN_QUOTE``
   characters) from the passage it names, but quotes another passage, is re-pointed to the passage it
   quotes the longest stretch of; an answer that cites no passage gets a citation of the passage it quotes
   the longest stretch of (recorded with "from": None), or, quoting none, becomes the abstention.

Each change is recorded in ``CitedAnswer.corrections``: {"kind": "recited", "from": n, "to": m, "by":
"attribution" | "quote"} or {"kind": "abstained", "by": ..., "text": the answer it replaced}.
"""

from __future__ import annotations

from dataclasses import replace

from clearlm.knowledge.answer import (
    EXAMPLE_ANSWER,
    EXAMPLE_PASSAGES,
    EXAMPLE_QUESTION,
    Citation,
    CitedAnswer,
    parse_citations,
    quote_citations,
    support,
)
from clearlm.knowledge.quotes import (
    NO_ANSWER,
    best_quoted,
    is_abstention,
    quoted_span,
    sentence_before,
    without_citations,
)

EXAMPLE_LEAK = 12  # characters of the worked example's text that, quoted, make an answer a leak


def correct(cited: CitedAnswer) -> CitedAnswer:
    """``cited`` after the rules above (a new CitedAnswer; ``cited`` is unchanged). Pure: no model runs."""
    if leaks_example(cited.text, [p.text for p in cited.passages]):
        return _abstain(cited, "example")
    if is_abstention(cited.text):
        if cited.text == NO_ANSWER and not cited.citations:
            return cited
        return _with_text(cited, NO_ANSWER)
    if not cited.passages:
        return cited
    if cited.attribution is not None:
        return _by_attribution(cited)
    return _by_quotes(cited)


def leaks_example(text: str, passages: list[str]) -> bool:
    """True when ``text`` quotes at least ``EXAMPLE_LEAK`` characters of the prompt's worked example (its
    passages, question or answer) that none of ``passages`` holds."""
    text = without_citations(text)
    for example in (EXAMPLE_ANSWER, EXAMPLE_QUESTION, *EXAMPLE_PASSAGES):
        span = quoted_span(text, example, EXAMPLE_LEAK)
        if span is not None and not any(example[span[0] : span[1]] in p for p in passages):
            return True
    return False


def _by_attribution(cited: CitedAnswer) -> CitedAnswer:
    relied = {s.number for s in cited.support if s.relied}
    if not relied:
        return _abstain(cited, "attribution")
    uncited = sorted(relied - set(cited.cited))
    if len(uncited) != 1:
        return cited
    moves = {
        (c.start, c.number): uncited[0]
        for c in cited.citations
        if c.passage is not None and c.number not in relied
    }
    return _recite(cited, moves, "attribution")


def _by_quotes(cited: CitedAnswer) -> CitedAnswer:
    texts = [p.text for p in cited.passages]
    if not cited.cited:
        best = best_quoted(without_citations(cited.text), texts)
        if best is None:
            return _abstain(cited, "quote")
        text = cited.text.rstrip() + f" [{best[0] + 1}]"
        return _with_text(cited, text, [{"kind": "recited", "from": None, "to": best[0] + 1, "by": "quote"}])
    moves = {}
    for c in cited.citations:
        if c.passage is None or c.quote_start is not None:
            continue
        best = best_quoted(sentence_before(cited.text, c.start), texts)
        if best is not None and best[0] != c.passage:
            moves[(c.start, c.number)] = best[0] + 1
    return _recite(cited, moves, "quote")


def _recite(cited: CitedAnswer, moves: dict[tuple[int, int], int], by: str) -> CitedAnswer:
    """``cited`` with the citation numbered n in the bracket at ``start`` re-pointed to passage ``moves[(
    start, n)]``: its bracket is rewritten ("[a, b]", each number once) and everything parsed again."""
    if not moves:
        return cited
    brackets: dict[tuple[int, int], list[Citation]] = {}
    for c in cited.citations:
        brackets.setdefault((c.start, c.end), []).append(c)
    out, pos = [], 0
    for (start, end), group in sorted(brackets.items()):
        numbers = [moves.get((start, c.number), c.number) for c in group]
        if numbers == [c.number for c in group]:
            continue
        out += [cited.text[pos:start], "[" + ", ".join(map(str, dict.fromkeys(numbers))) + "]"]
        pos = end
    text = "".join(out) + cited.text[pos:]
    records = [{"kind": "recited", "from": number, "to": to, "by": by} for (_, number), to in moves.items()]
    return _with_text(cited, text, records)


def _abstain(cited: CitedAnswer, by: str) -> CitedAnswer:
    return _with_text(cited, NO_ANSWER, [{"kind": "abstained", "by": by, "text": cited.text}])


def _with_text(cited: CitedAnswer, text: str, records: list[dict] = ()) -> CitedAnswer:
    n = len(cited.passages)
    citations, unknown = parse_citations(text, n) if text != NO_ANSWER else ([], [])
    citations = quote_citations(text, citations, cited.passages)
    return replace(
        cited,
        text=text,
        citations=citations,
        unknown_citations=unknown,
        support=support(n, citations, cited.attribution, cited.relied_threshold),
        corrections=[*cited.corrections, *records],
    )
