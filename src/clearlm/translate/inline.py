"""Inline markup inside a sentence, kept out of the engine's way without splitting the sentence.

A sentence with inline markup (Markdown ``**bold**``, ``*em*``, `` `code` ``, ``[link](url)``; HTML
``<b>``, ``<a href>``, ``<em>``, ``<code>``) is translated as one sentence: each piece of markup becomes
a placeholder token ``⟦n⟧`` (an opening and a closing one around a span whose words are translated; one
token for a span kept verbatim: code, a URL, an e-mail address, an image, a comment), the engine
translates the masked text, and :meth:`Masked.restore` puts the markup back. This is the placeholder
("tag transfer by masking") method of tag handling in MT (Hanneman & Dinu 2020, "How should markup tags
be translated?", WMT): the tokens are opaque to the engine and move with the words around them.

A translation that lost, doubled or misordered a token (a neural engine may rewrite it) is refused
(:meth:`Masked.restore` returns None): the caller then translates the text between the markup run by
run, as before. Measured with Apertium (3.8, eng-spa): every token survives, but a bare token is a word
boundary it does not reorder across ("el **rojo** botón"), so the Apertium engine sends the wrapping pairs
as HTML spans in its HTML format, which move with their words (``translate.apertium.wrap_tokens``: "el
botón **rojo**"). Bergamot (en-pt) rewrites the tokens (``⟦1⟧red⟦2⟧`` -> ``1-vermelho 2``), so its
sentences with markup fall back to runs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

OPEN, CLOSE = "⟦", "⟧"  # U+27E6, U+27E7: in no ordinary text, kept by Apertium as they are
_TOKEN = re.compile(r"⟦(\d+)⟧")
_LETTER = re.compile(r"[^\W\d_]")


def token(n: int) -> str:
    return f"{OPEN}{n}{CLOSE}"


@dataclass(slots=True)
class Masked:
    """A text with its markup as tokens. ``text``: the masked text (what the engine translates);
    ``spans[n]``: the markup token ``n`` stands for; ``pairs``: (opening, closing) token numbers of
    spans that wrap words (they must stay in that order, properly nested); ``escape``: applied to the
    translated words on restore (``html.escape`` for HTML; identity for Markdown); ``wrap``: the
    caller's width to wrap the translation to (a hard-wrapped Markdown paragraph), 0 for none."""

    text: str
    spans: list[str] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    escape: Callable[[str], str] = str
    wrap: int = 0  # the width to wrap the restored translation to (0: not wrapped)

    def add(self, span: str) -> str:
        """A new token for ``span``."""
        self.spans.append(span)
        return token(len(self.spans) - 1)

    def translatable(self) -> bool:
        """Whether any word is left outside the tokens."""
        return bool(_LETTER.search(_TOKEN.sub(" ", self.text)))

    def valid(self, translated: str) -> bool:
        """Every token once, each pair open before close, pairs properly nested."""
        found = [int(m.group(1)) for m in _TOKEN.finditer(translated)]
        if sorted(found) != list(range(len(self.spans))):
            return False
        at = {n: i for i, n in enumerate(found)}
        closing = {c: o for o, c in self.pairs}
        opening = {o for o, _ in self.pairs}
        stack: list[int] = []
        for n in found:
            if n in opening:
                stack.append(n)
            elif n in closing:
                if not stack or stack[-1] != closing[n] or at[closing[n]] > at[n]:
                    return False
                stack.pop()
        return not stack

    def restore(self, translated: str) -> str | None:
        """``translated`` (the engine's output of :attr:`text`) with the markup back in; None when a
        token was lost, doubled or moved out of order (see :meth:`valid`)."""
        if not self.valid(translated):
            return None
        return self.show(translated)

    def show(self, text: str) -> str:
        """``text`` with every token it holds replaced by its markup (tokens missing are left out): a
        sentence as a report shows it."""
        out, at = [], 0
        for m in _TOKEN.finditer(text):
            out.append(self.escape(text[at : m.start()]))
            n = int(m.group(1))
            out.append(self.spans[n] if n < len(self.spans) else "")
            at = m.end()
        out.append(self.escape(text[at:]))
        return "".join(out)


# Markdown (CommonMark's inline syntax, the common cases). Kept verbatim, one token each:
_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
_HTML_CODE = re.compile(r"<(code|kbd|samp)\b[^>]*>.*?</\1>", re.I | re.S)
_AUTOLINK = re.compile(r"<(?:[a-zA-Z][\w+.-]*:[^\s<>]*|[^\s<>@]+@[^\s<>]+)>")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s⟦⟧<>]*[^\s⟦⟧<>.,;:!?)\]'\"]")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.\w+")
# Wrapping (the words inside are translated): links and images, inline HTML elements, emphasis.
_LINK = re.compile(
    r"(!?\[)((?:[^\[\]]|\[[^\[\]]*\])*)"
    r"(\]\([^()\s]*(?:\([^()\s]*\))?[^()\s]*(?:\s+\"[^\"]*\"|\s+'[^']*')?\)|\]\[[^\]]*\])"
)
_HTML_PAIR = re.compile(r"(<([a-zA-Z][\w-]*)\b[^>]*>)([^<]*)(</\2\s*>)")  # innermost: no tag inside
_HTML_TAG = re.compile(r"</?[a-zA-Z][\w-]*\b[^>]*>|<!--.*?-->", re.S)
_EMPHASIS = [
    re.compile(r"(\*\*)(?=\S)(.+?)(?<=\S)(\*\*)"),
    re.compile(r"(?<!\w)(__)(?=\S)(.+?)(?<=\S)(__)(?!\w)"),
    re.compile(r"(~~)(?=\S)(.+?)(?<=\S)(~~)"),
    re.compile(r"(?<![*\w])(\*)(?=[^\s*])(.+?)(?<=[^\s*])(\*)(?![*\w])"),
    re.compile(r"(?<![_\w])(_)(?=[^\s_])(.+?)(?<=[^\s_])(_)(?![_\w])"),
]


def mask_markdown(text: str) -> Masked:
    """A line of Markdown (a paragraph's line, a heading's or a list item's text, a table cell) with
    its inline markup as tokens: code spans, autolinks, bare URLs and e-mail addresses and inline
    ``<code>`` kept verbatim; links and images (``[`` and ``](target)`` around their text), inline HTML
    elements, ``**``, ``__``, ``~~``, ``*`` and ``_`` emphasis wrap words that are translated. A text
    already holding ``⟦`` is left unmasked (no tokens)."""
    masked = Masked(text)
    if OPEN in text or CLOSE in text:
        return masked

    def one(m: re.Match) -> str:
        return masked.add(m.group(0))

    def pair(m: re.Match, open_group: int, inner: int, close_group: int) -> str:
        start = masked.add(m.group(open_group))
        end = masked.add(m.group(close_group))
        masked.pairs.append((int(start[1:-1]), int(end[1:-1])))
        return start + m.group(inner) + end

    s = _CODE.sub(one, text)
    s = _HTML_CODE.sub(one, s)
    s = _LINK.sub(lambda m: pair(m, 1, 2, 3), s)
    s = _AUTOLINK.sub(one, s)
    while True:  # inline HTML elements, innermost first (before URLs: an href holds one)
        new = _HTML_PAIR.sub(lambda m: pair(m, 1, 3, 4), s)
        if new == s:
            break
        s = new
    s = _HTML_TAG.sub(one, s)  # a lone tag (<br>, an unclosed one), a comment
    s = _URL.sub(one, s)
    s = _EMAIL.sub(one, s)
    for pattern in _EMPHASIS:
        s = pattern.sub(lambda m: pair(m, 1, 2, 3), s)
    masked.text = s
    return _in_order(masked)


def _in_order(masked: Masked) -> Masked:
    """``masked`` with its tokens renumbered in the order they appear (⟦0⟧ first)."""
    order = [int(m.group(1)) for m in _TOKEN.finditer(masked.text)]
    new = {old: n for n, old in enumerate(order)}
    masked.text = _TOKEN.sub(lambda m: token(new[int(m.group(1))]), masked.text)
    masked.spans = [masked.spans[old] for old in order]
    masked.pairs = [(new[a], new[b]) for a, b in masked.pairs]
    return masked


_IDENTIFIER = re.compile(r"(?<![\w⟦])(?=[\w./#-]*\d)(?=[\w./#-]*[^\W\d_])\w+(?:[-/.:#]\w+)*")


def mask_identifiers(text: str) -> Masked:
    """Plain text (a support message) with what must be kept exactly as tokens: URLs, e-mail addresses,
    and codes mixing letters and digits (order numbers ``A-10002``, ``SKU 4B-77``): Apertium translates
    the letters of a code as words ("A-10002" came back "To-10002"). A text already holding ``⟦`` is
    left unmasked."""
    masked = Masked(text)
    if OPEN in text or CLOSE in text:
        return masked
    s = _URL.sub(lambda m: masked.add(m.group(0)), text)
    s = _EMAIL.sub(lambda m: masked.add(m.group(0)), s)
    masked.text = _IDENTIFIER.sub(lambda m: masked.add(m.group(0)), s)
    return _in_order(masked)


# HTML (a BeautifulSoup tree): the phrasing content of a block is one run.
INLINE_TAGS = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "button", "cite", "data", "del", "dfn", "em", "font", "i", "ins",
    "label", "mark", "q", "s", "small", "span", "strong", "sub", "sup", "time", "u",
})  # fmt: skip
ATOMIC_TAGS = frozenset({
    "code", "kbd", "samp", "var", "img", "br", "wbr", "math", "svg", "input", "textarea", "script",
    "style", "iframe", "object", "audio", "video", "canvas",
})  # fmt: skip


def phrasing(node) -> bool:
    """Whether ``node`` (a bs4 node) belongs inside a sentence: text, a comment, an atomic element
    (code, img, br, ...), or an inline element (b, a, em, span, ...) holding only such nodes."""
    from bs4 import Tag

    if not isinstance(node, Tag):
        return True
    if node.name in ATOMIC_TAGS:
        return True
    return node.name in INLINE_TAGS and all(phrasing(c) for c in node.children)


def mask_html(nodes: list) -> Masked:
    """A run of sibling phrasing nodes (bs4) as one masked text: text as it reads, an inline element as
    its start tag and end tag around its content, an atomic element or a comment whole (rendered as
    the tree holds it now: translate attributes first). :meth:`Masked.restore` gives the run's HTML."""
    from bs4 import NavigableString, Tag

    masked = Masked("", escape=lambda t: html.escape(t, quote=False))
    parts: list[str] = []

    def walk(node) -> None:
        if type(node) is NavigableString:
            parts.append(str(node))  # (the caller keeps runs whose text holds a token's brackets)
        elif isinstance(node, Tag) and node.name in INLINE_TAGS:
            shell = str(Tag(name=node.name, attrs=dict(node.attrs)))
            start = masked.add(shell[: shell.rfind("</")])
            parts.append(start)
            for child in node.children:
                walk(child)
            parts.append(masked.add(f"</{node.name}>"))
            masked.pairs.append((int(start[1:-1]), len(masked.spans) - 1))
        elif isinstance(node, NavigableString):  # a comment, CDATA, a declaration
            parts.append(masked.add(node.output_ready()))
        else:  # an atomic element
            parts.append(masked.add(str(node)))

    for node in nodes:
        walk(node)
    masked.text = "".join(parts)
    return masked
