"""Tokenizing text so that what a person wrote stays text.

A tokenizer matches its added tokens (``<|im_start|>``, ``<start_of_turn>``, ...) anywhere in the text it is
given, so a message holding the text ``<|im_end|>`` would otherwise reach the model as a real end of turn.
Here *control tokens* (the tokenizer's special tokens, plus the added tokens its chat template writes) are
kept as tokens only where they stand in text we mark as markup (the template's own text). Anywhere else a
control token's text is tokenized as ordinary characters, the rule of transformers'
``apply_chat_template(..., sanitize_control_tokens=True)``, here with each token's character offsets.

Text without control-token strings tokenizes exactly as the tokenizer tokenizes it. Only reads of the
shared ``tokenizers`` backend are made (no flag or truncation is changed), so encoding is thread safe.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from clearlm.errors import BackendUnavailableError


@dataclass(frozen=True, slots=True)
class Encoding:
    """Token ids and each token's character span ``(start, end)`` in the encoded text (``(0, 0)`` for a
    token the tokenizer adds, such as a beginning-of-sequence token)."""

    ids: list[int]
    offsets: list[tuple[int, int]]


class TextTokenizer:
    """Encoders over one Hugging Face fast tokenizer that keep text apart from control tokens.

    Attributes: control_ids (frozenset of token ids), control_tokens (frozenset of their strings).
    """

    def __init__(self, tokenizer) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise BackendUnavailableError(
                f"{type(tokenizer).__name__} is not a fast tokenizer: clearlm needs a Hugging Face fast "
                "tokenizer (a tokenizer.json) to keep message text apart from control tokens"
            )
        self._backend = backend
        literal = _template_literal_text(getattr(tokenizer, "chat_template", None))
        extra = set(getattr(tokenizer, "chat_control_tokens", None) or ())
        control = {
            i: t.content
            for i, t in tokenizer.added_tokens_decoder.items()
            if t.special or t.content in extra or (t.content in literal and not t.content.isspace())
        }
        control.update(zip(tokenizer.all_special_ids, tokenizer.all_special_tokens, strict=True))
        self.control_ids = frozenset(control)
        self.control_tokens = frozenset(control.values())
        self._as_text: dict[int, Encoding] = {}
        self._as_text_lock = threading.Lock()
        self._newline = self._raw_model_tokens("\n").ids
        # what the post-processor adds around a text (a beginning-of-sequence token, say)
        inner = backend.encode("a", add_special_tokens=False).ids
        outer = backend.encode("a", add_special_tokens=True).ids
        p = next((k for k in range(len(outer)) if outer[k : k + len(inner)] == inner), 0)
        self._added = (outer[:p], outer[p + len(inner) :])

    def markup(self, text: str) -> Encoding:
        """``text`` with its control-token strings parsed as control tokens (a chat template's own text,
        never content). No tokens are added."""
        return _encoding(self._backend.encode(text, add_special_tokens=False))

    def plain(self, text: str, *, add_special_tokens: bool = False) -> Encoding:
        """``text`` as text: a control-token string in it becomes ordinary tokens. ``add_special_tokens``
        adds what the tokenizer's post-processor adds (a beginning-of-sequence token, say)."""
        enc = self.segments(text, ())
        if not add_special_tokens:
            return enc
        before, after = self._added
        return Encoding(
            before + enc.ids + after,
            [(0, 0)] * len(before) + enc.offsets + [(len(text), len(text))] * len(after),
        )

    def segments(self, text: str, markup: Sequence[tuple[int, int]]) -> Encoding:
        """Encode ``text`` where only the character ranges ``markup`` (the template's own text) may hold
        control tokens. The text is tokenized whole, so the tokens between control tokens are the
        tokenizer's own; each control token found outside ``markup`` is replaced by the tokens of its
        text."""
        enc = self.markup(text)
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for i, (s, e) in zip(enc.ids, enc.offsets, strict=True):
            if i not in self.control_ids or any(a <= s and e <= b for a, b in markup):
                ids.append(i)
                offsets.append((s, e))
            else:
                piece = self._text_of(i, text[s:e])
                ids += piece.ids
                offsets += [(s + a, s + b) for a, b in piece.offsets]
        return Encoding(ids, offsets)

    def contains_control(self, text: str) -> bool:
        """Whether ``text`` holds a control token's string (as the tokenizer finds it)."""
        return any(i in self.control_ids for i in self.markup(text).ids)

    def _text_of(self, token_id: int, text: str) -> Encoding:
        """The tokens of a control token's text as ordinary characters (offsets relative to ``text``)."""
        if text not in self.control_tokens:  # matched with whitespace it strips: not worth keeping
            return self._model_tokens(text)
        with self._as_text_lock:
            found = self._as_text.get(text)
        if found is None:
            found = self._model_tokens(text)
            with self._as_text_lock:
                self._as_text[text] = found
        return found

    def _model_tokens(self, text: str) -> Encoding:
        """``text`` through the normalizer, pre-tokenizer and model only (no added tokens), as it is read in
        the middle of a longer text: ``"\\n" + text`` is encoded and the newline's tokens taken off, so a
        SentencePiece-style tokenizer adds no leading space. A piece that still comes out as a control
        token (a vocabulary that also holds it as an ordinary token) is split in two."""
        enc = self._raw_model_tokens("\n" + text)
        n = len(self._newline)
        if enc.ids[:n] == self._newline and all(e <= 1 for _, e in enc.offsets[:n]):
            enc = Encoding(enc.ids[n:], [(max(s - 1, 0), max(e - 1, 0)) for s, e in enc.offsets[n:]])
        else:
            enc = self._raw_model_tokens(text)
        if len(text) > 1 and any(i in self.control_ids for i in enc.ids):
            h = len(text) // 2
            left, right = self._model_tokens(text[:h]), self._model_tokens(text[h:])
            return Encoding(left.ids + right.ids, left.offsets + [(s + h, e + h) for s, e in right.offsets])
        return enc

    def _raw_model_tokens(self, text: str) -> Encoding:
        b = self._backend
        normalized = b.normalizer.normalize_str(text) if b.normalizer is not None else text
        exact = len(normalized) == len(text)  # then offsets in the normalized text are offsets in the text
        if b.pre_tokenizer is not None:
            splits = b.pre_tokenizer.pre_tokenize_str(normalized)
        else:
            splits = [(normalized, (0, len(normalized)))]
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for piece, (start, end) in splits:
            for token in b.model.tokenize(piece):
                ids.append(token.id)
                s, e = token.offsets
                offsets.append((min(start + s, end), min(start + e, end)) if exact else (0, len(text)))
        return Encoding(ids, offsets)


def text_tokenizer(tokenizer) -> TextTokenizer:
    """The :class:`TextTokenizer` of ``tokenizer`` (made once and kept while the tokenizer lives; made
    again when its chat template or vocabulary changes). Thread safe.

    Raises:
        BackendUnavailableError: ``tokenizer`` is not a fast tokenizer.
    """
    key = (str(getattr(tokenizer, "chat_template", None)), len(tokenizer))
    with _lock:
        try:
            cached = _cache.get(tokenizer)
        except TypeError:  # not weak-referenceable: not kept
            return TextTokenizer(tokenizer)
        if cached is None or cached[0] != key:
            cached = (key, TextTokenizer(tokenizer))
            _cache[tokenizer] = cached
        return cached[1]


def encode_text(tokenizer, text: str, *, add_special_tokens: bool = False) -> list[int]:
    """Token ids of ``text`` as text: a control-token string in it (``"<|im_end|>"``) is tokenized as
    ordinary characters, never as the control token; other text tokenizes as the tokenizer does. Use it
    for anything a user wrote (a target to explain, a response to attribute). ``add_special_tokens`` adds a
    beginning-of-sequence token where the tokenizer adds one.

    Raises:
        BackendUnavailableError: ``tokenizer`` is not a fast tokenizer.
    """
    return text_tokenizer(tokenizer).plain(text, add_special_tokens=add_special_tokens).ids


_lock = threading.Lock()
_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _encoding(enc) -> Encoding:
    return Encoding(list(enc.ids), [tuple(o) for o in enc.offsets])


def _template_literal_text(template) -> str:
    """The literal strings of a chat template (its text and string constants), joined by NUL so that a
    search cannot match across two of them."""
    if isinstance(template, dict):  # several named templates
        return "\0".join(_template_literal_text(t) for t in template.values())
    if not isinstance(template, str) or not template:
        return ""
    import jinja2
    from jinja2 import nodes

    try:
        ast = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(template)
    except jinja2.TemplateError:
        return template
    literals = {n.data for n in ast.find_all(nodes.TemplateData)}
    literals |= {n.value for n in ast.find_all(nodes.Const) if isinstance(n.value, str)}
    return "\0".join(literals)
