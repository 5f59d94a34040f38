"""The output policy over everything a response returns, not only the answer: the passages and context
attribution of citations, the token strings of explanations, knowledge-base search results.

The rule: every text a response returns passes the policy's output stage (redacted or withheld as it
says), except identifiers (ids, model names, file paths). That includes text the caller sent (the
question in citations, the prompt's tokens in an explanation), because those fields mix the caller's
words with retrieved passages and system text, and are shown, stored and forwarded like the answer.
Text split into pieces (tokens, words) is redacted as a whole and the result handed back to the pieces
(:func:`redact_pieces`), so the pieces still join to exactly the redacted text and no piece keeps a
fragment of a redacted value.
"""

from __future__ import annotations

import bisect
import dataclasses

from clearlm.govern.base import Action, ScanContext

WITHHELD = "[withheld by policy]"  # what a text the output policy blocks is returned as


def active(policy) -> bool:
    """True when ``policy`` has output rules (otherwise everything passes as it is)."""
    return policy is not None and bool(policy.spec.output)


def govern_text(policy, text: str, role: str | None = "assistant", field: str = "") -> tuple[str, list]:
    """``text`` as the output policy lets it be returned (redacted; ``WITHHELD`` when blocked), and the
    governance notes (``[{"field", "action", "results"}]``, empty when nothing was found)."""
    if not active(policy) or not text:
        return text, []
    d = policy.check(text, ScanContext("output", role))
    return (WITHHELD if d.blocked else d.text), _note(field, d)


def govern_pieces(policy, pieces: list[str], role: str | None, field: str = "") -> tuple[list[str], list]:
    """Pieces of one text (tokens, words) as the output policy lets them be returned: the joined text is
    checked once; a blocked text becomes ``[WITHHELD, "", ...]``, a redacted one is handed back to the
    pieces by :func:`redact_pieces`. Returns (pieces, notes)."""
    text = "".join(pieces)
    if not active(policy) or not text.strip():
        return list(pieces), []
    d = policy.check(text, ScanContext("output", role))
    if d.blocked:
        return [WITHHELD] + [""] * (len(pieces) - 1), _note(field, d)
    return redact_pieces(pieces, d.text), _note(field, d)


def redact_pieces(pieces: list[str], redacted: str) -> list[str]:
    """Hand a redacted version of ``"".join(pieces)`` back to the pieces.

    Text left unchanged stays with its piece; each edited span (a redacted value) goes whole to the piece
    where it began, and the other pieces it covered become empty. So ``"".join(result) == redacted`` and
    no piece keeps a character of a replaced span (see :func:`_edits` for how spans are found).
    """
    text = "".join(pieces)
    if redacted == text:
        return list(pieces)
    starts, pos = [], 0
    for p in pieces:
        starts.append(pos)
        pos += len(p)
    out = [""] * len(pieces)

    def owner(i: int) -> int:  # the last non-empty piece starting at or before character i
        k = bisect.bisect_right(starts, i) - 1 if i < len(text) else len(pieces) - 1
        while k > 0 and not pieces[k]:
            k -= 1
        return max(k, 0)

    for tag, i1, i2, j1, j2 in _edits(text, redacted):
        if tag != "equal":
            out[owner(i1)] += redacted[j1:j2]
            continue
        k = owner(i1)
        while k < len(pieces) and starts[k] < i2:
            a, b = max(starts[k], i1), min(starts[k] + len(pieces[k]), i2)
            if b > a:
                out[k] += redacted[j1 + a - i1 : j1 + b - i1]
            k += 1
    return out


def _edits(a: str, b: str) -> list[tuple[str, int, int, int, int]]:
    """An alignment of ``a`` with its redacted version ``b``, as difflib-style opcodes ("equal" or "edit",
    a[i1:i2] -> b[j1:j2]). Redaction replaces spans, so it walks both texts together and, at each
    difference, resumes at the first ``_ANCHOR``-character run of ``a`` found again in ``b`` nearby: linear
    in practice, where difflib's matching is quadratic on long, repetitive prompts. Any alignment keeps
    ``redact_pieces`` exact (equal runs are equal); a finer one only places replacements better."""
    ops: list[tuple[str, int, int, int, int]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        k = _common_prefix(a, b, i, j)
        if k:
            ops.append(("equal", i, i + k, j, j + k))
            i, j = i + k, j + k
            continue
        i2, j2 = _resync(a, b, i, j)
        ops.append(("edit", i, i2, j, j2))
        i, j = i2, j2
    return ops


_ANCHOR = 8  # characters that must agree again for an edit to end
_WINDOW = 2000  # the longest span (and replacement) looked across, in characters


def _common_prefix(a: str, b: str, i: int, j: int) -> int:
    n = min(len(a) - i, len(b) - j)
    step = 64
    k = 0
    while k < n:  # in blocks (compared in C), then character by character in the last block
        m = min(step, n - k)
        if a[i + k : i + k + m] == b[j + k : j + k + m]:
            k += m
            continue
        while a[i + k] == b[j + k]:
            k += 1
        break
    return k


def _resync(a: str, b: str, i: int, j: int) -> tuple[int, int]:
    """Where ``a`` and ``b`` agree again after a difference at (i, j): the least skip in ``a`` whose next
    ``_ANCHOR`` characters (fewer at the end) appear in ``b`` within the window; (len(a), len(b)) if none."""
    for d in range(min(_WINDOW, len(a) - i) + 1):
        anchor = a[i + d : i + d + _ANCHOR]
        if not anchor:
            break
        at = b.find(anchor, j, j + _WINDOW + len(anchor))
        if at >= 0 and (len(anchor) == _ANCHOR or at + len(anchor) == len(b)):
            return i + d, at
    return len(a), len(b)


def govern_passages(policy, passages, field: str = "passages") -> tuple[list, list]:
    """Passages (``clearlm.knowledge.Passage``) with their text, title and headings through the output
    policy (role "document"); their ids, paths and offsets are kept. Returns (passages, notes)."""
    if not active(policy):
        return list(passages), []
    out, notes = [], []
    for i, p in enumerate(passages):
        where = f"{field}[{i}]"
        text, n1 = govern_text(policy, p.text, "document", f"{where}.text")
        title, n2 = govern_text(policy, p.title, "document", f"{where}.title")
        headings = []
        for h in p.heading_path:
            h2, n3 = govern_text(policy, h, "document", f"{where}.heading_path")
            headings.append(h2)
            n2 += n3
        for n in (*n1, *n2):
            n.update(chunk_id=p.chunk_id)
        notes += n1 + n2
        out.append(dataclasses.replace(p, text=text, title=title, heading_path=tuple(headings)))
    return out, notes


def govern_attribution(policy, result) -> tuple[object, list]:
    """An explanation (``clearlm.explain.Attribution``) whose token strings passed the output policy.

    Each message's source tokens are checked as one text (with its role; chat-template scaffolding is
    left as it is); the target tokens as one text (role "assistant"), and the generated tokens among
    the sources with them, so both join to the same redacted answer. When any string changed,
    ``token_ids`` is emptied, since the ids would rebuild the text. Scores keep their shape.
    """
    if not active(policy):
        return result, []
    sources, notes = list(result.source_tokens), []
    n_messages = max(result.source_message, default=-1)
    runs = _runs(result.source_message)
    answer = "".join(result.target_tokens)
    for a, b in runs:
        message = result.source_message[a]
        if message < 0:
            continue
        pieces = sources[a:b]
        generated = result.n_prompt <= a and message == n_messages
        if generated:  # the answer's earlier tokens: checked with the rest of the answer
            joined = "".join(pieces)
            pieces = [*pieces, answer[len(joined) :] if answer.startswith(joined) else ""]
        role = "assistant" if generated else result.source_roles[a]
        governed, found = govern_pieces(policy, pieces, role, f"explanation.source_tokens[{a}:{b}]")
        sources[a:b] = governed[: b - a]
        notes += found
    targets, found = govern_pieces(
        policy, list(result.target_tokens), "assistant", "explanation.target_tokens"
    )
    notes += found
    changed = sources != list(result.source_tokens) or targets != list(result.target_tokens)
    if not changed:
        return result, notes
    return dataclasses.replace(result, source_tokens=sources, target_tokens=targets, token_ids=[]), notes


def govern_citations(policy, cited) -> tuple[object, list]:
    """A ``clearlm.knowledge.answer.CitedAnswer`` with its question, passages and the context
    attribution's source texts through the output policy (its ``text`` is the answer, governed already).
    Returns (cited answer, notes)."""
    if not active(policy):
        return cited, []
    question, notes = govern_text(policy, cited.question, "user", "citations.question")
    passages, found = govern_passages(policy, cited.passages, "citations.passages")
    notes += found
    attribution = cited.attribution
    if attribution is not None:
        texts = []
        for i, s in enumerate(attribution.sources):
            s2, found = govern_text(policy, s, "document", f"citations.attribution.sources[{i}]")
            texts.append(s2)
            notes += found
        response, found = govern_text(
            policy, attribution.response, "assistant", "citations.attribution.response"
        )
        notes += found
        attribution = dataclasses.replace(attribution, sources=texts, response=response)
    cited = dataclasses.replace(cited, question=question, passages=passages, attribution=attribution)
    return cited, notes


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """[start, end) of each run of equal consecutive values."""
    runs, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            runs.append((start, i))
            start = i
    return runs


def _note(field: str, decision) -> list[dict]:
    if decision.action is Action.ALLOW and not any(r.findings for r in decision.results):
        return []
    return [{"field": field, **decision.to_dict()}]
