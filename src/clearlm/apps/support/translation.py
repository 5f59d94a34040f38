"""The desk's languages (issue 15, "Multilingual"): the customer's language detected and kept, and
translation between the customer's language and an agent's, both ways, on the governed pipeline.

- :func:`detect_language`: the project's detector (the policy's ``language`` scanner,
  ``govern.rules.LanguageScanner``: lingua, all 75 of its languages, low-accuracy mode). A text under 20
  characters, or one whose best language has a confidence under 0.9, is not judged (None). Measured
  (lingua 2.x, 2026-12-02): full sentences in es, fr, de, it, pt, nl, pl, ru, ja score 1.000, "Where is my
  order? It has not arrived yet." en 0.998; "I am returning order A-10002" only en 0.284 (da 0.214), "ok",
  "changed mind", "Hello?" are unjudged: short replies never change a customer's language.
- :func:`keep_language`: a customer's message detected in another language than the stored one, with
  that confidence, updates the customer's ``language``; the desk then stores the message with it, and the
  system prompt of every reply names it (``Desk._context``), so the assistant answers in it.
- :func:`translate`: through :mod:`clearlm.translate`, the engine chosen per language pair
  (:func:`engine_for`): Bergamot or Apertium where one has the pair (what ``clearlm translate`` picks
  without a model: en <-> pt Bergamot; en <-> es, ca, gl, es <-> pt, fr, and the pairs through Spanish
  Apertium), else the desk's model as :class:`DeskModelEngine`: one pipeline turn
  (``TurnRunner.generate``, kind ``translate``: endpoint ``support:translate``, record id
  ``<conversation id>-...``), checked by the policy and audited like any turn; the record keeps the
  source text (as the policy stores text) and the translation. An engine that fails (not installed, a
  crash) falls back to the model. ``Translation.method`` names the engine: ``apertium``, ``bergamot``,
  ``model`` or ``none``. The desk never calls a backend itself: its only model calls are
  ``TurnRunner`` turns (``clearlm.pipeline.start_turn``); Apertium and Bergamot are not chat backends and
  see only text the policy already screened (a stored customer message, an agent's reply, a flow's text).
- :func:`fixed_reply`: a flow's fixed reply (a prompt, an ``invalid`` message, a say/end/hand-off
  message) or the desk's own in the customer's language: the flow's variant for it when there is one
  (no turn), else the text translated by :func:`translate` (Apertium or Bergamot where one has the
  pair, else one ``support:translate`` turn), else, when that fails, the text as written.
- :func:`translate_messages`: a conversation's messages with each customer message (in another language
  than ``target``) translated, for the desk view (the original is the message itself, shown beside it);
  a translation is cached in this process (by conversation, message, text and target), so a page shown
  again costs no new turn.
- :func:`agent_reply_in`: an agent's reply translated into the customer's language; the stored ``agent``
  message keeps the original for the desk (what was written, in which language, which engine
  translated it); the customer reads only the translation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from clearlm.apps.support.conversations import SupportConversation
from clearlm.apps.support.customers import Customers, language_code
from clearlm.apps.support.languages import (  # noqa: F401 (re-exported)
    MIN_CONFIDENCE,
    detect_language,
    detected,
    keep_language,
    translatable_pattern,
)
from clearlm.apps.support.translation_engines import (  # noqa: F401 (re-exported)
    DeskModelEngine,
    TranslationFailedError,
    engine_for,
    language_name,
    prompt,
)
from clearlm.errors import InvalidInputError
from clearlm.store.review import MAX_ANSWER_CHARS as MAX_NOTE_CHARS

# The desk's own hand-off reply in the languages the desk hears (a flow's own texts give their variants
# in its YAML): no translation turn for these customers; others get the English one translated.
HANDOFF_MESSAGES = {
    "en": "I am passing you to a person; they will answer here shortly.",
    "es": "Le paso con una persona; le responderá aquí en breve.",
    "fr": "Je vous mets en relation avec une personne ; elle vous répondra ici sous peu.",
    "de": "Ich verbinde Sie mit einem Menschen; Sie erhalten hier in Kürze eine Antwort.",
    "pt": "Vou passá-lo a uma pessoa; ela responderá aqui em breve.",
    "it": "La passo a una persona; le risponderà qui a breve.",
}
MAX_TRANSLATED = 50  # customer messages translated per translate_messages() call (the latest)
CACHED = 2048  # translations kept in this process


_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Translation:
    """A translated text. Fields: text; source, target (ISO 639-1); method (the engine that translated:
    ``apertium``, ``bergamot``, ``model``: a pipeline turn; ``none``: source and target are the same
    language, the text is returned as it is); request_id (the model turn's audit record, else None);
    original (the text translated)."""

    text: str
    source: str
    target: str
    method: str
    request_id: str | None = None
    original: str | None = None

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "source": self.source,
            "target": self.target,
            "method": self.method,
            "request_id": self.request_id,
            "original": self.original,
        }


def _known(code: str) -> bool:
    try:
        language_name(code)
    except InvalidInputError:
        return False
    return True


ENGINES = ("auto", "model")  # an agent's choice for a reply: the engine engine_for picks, or the model


def translate(
    runner, tenant: str, conversation_id: str, text: str, source: str, target: str, engine: str = "auto"
) -> Translation:
    """``text`` from ``source`` into ``target`` (ISO 639-1) with the engine :func:`engine_for` picks
    (``engine="model"``: the desk's model, skipping Apertium and Bergamot, whose output can be literal)
    (its sentences and lines: ``clearlm.translate.translate_text``; order numbers, e-mail addresses and
    links masked as tokens and put back: ``translate.inline.mask_identifiers``; a lost token: the text
    unmasked; one of them not kept, a failed or empty translation: the model instead), else as one
    pipeline turn of
    ``runner`` in the conversation ``conversation_id`` (:class:`DeskModelEngine`: the whole text in one
    turn, its context kept). The same language both sides: the text as it is, no engine.

    Raises:
        InvalidInputError (400): a code that is not ISO 639-1 or not a language lingua knows; an empty
            text; an engine not in ``ENGINES``. TranslationFailedError (422): the turn gave no text.
            ContextLengthError: too long.
    """
    from clearlm.errors import BackendUnavailableError
    from clearlm.translate import TranslationError, translate_text
    from clearlm.translate.inline import mask_identifiers

    if engine not in ENGINES:
        raise InvalidInputError(f"translate with one of {', '.join(ENGINES)}, not {engine!r}")
    source = language_code(source, "the source language")
    target = language_code(target, "the target language")
    if not text or not text.strip():
        raise InvalidInputError("there is no text to translate: write the message first")
    if source == target:
        return Translation(text, source, target, "none", original=text)
    language_name(source, "the source language")
    language_name(target, "the target language")
    found = engine_for(source, target) if engine == "auto" else None
    if found is not None:
        masked = mask_identifiers(text)  # order numbers, e-mail addresses, links kept as written
        try:
            done = masked.restore(translate_text(found, masked.text, source, target).text)
            if done is None:  # a token lost (Bergamot rewrites them): the text as it is, if it keeps them
                done = translate_text(found, text, source, target).text
                if any(span not in done for span in masked.spans):
                    done = None  # "help@shop.example" came back "ajudar-shop.example": the model
        except (TranslationError, BackendUnavailableError):
            done = None  # the model translates it instead
        if done is not None and done.strip():
            return Translation(done.strip(), source, target, found.name, original=text)
    model = DeskModelEngine(runner, tenant, conversation_id)
    (out,) = model.translate([text], source, target)
    return Translation(out, source, target, "model", model.request_ids[-1], original=text)


def fixed_reply(
    runner, tenant: str, conversation_id: str, text: str, language: str | None
) -> tuple[str, Translation | None]:
    """``text`` (a flow's fixed reply: a ``str``, or a :class:`~clearlm.apps.support.slots.Localized`
    with its variants by language) as a customer writing ``language`` (ISO 639-1; None: unknown) should
    read it, and the :class:`Translation` made for it (None when none was needed). Plain text is taken to
    be in ``slots.DESK_LANGUAGE`` (en). The customer's variant is taken as it is; without one, the text is
    translated (:func:`translate`: Apertium or Bergamot where one has the pair, else one audited
    pipeline turn, in ``conversation_id``); when that turn
    gives nothing (TranslationFailedError) or the language is one clearlm cannot translate, the text is
    returned as written, so the customer still gets the reply. The caller says the result through the
    output policy as usual.
    """
    from clearlm.apps.support.slots import DESK_LANGUAGE

    variants = getattr(text, "variants", None) or {}
    source = getattr(text, "language", DESK_LANGUAGE)
    if language is None or language == source:
        return str(text), None
    if language in variants:
        return variants[language], None
    try:
        done = translate(runner, tenant, conversation_id, str(text), source, language)
    except (TranslationFailedError, InvalidInputError):
        return str(text), None
    return done.text, done


def translate_messages(
    runner, conversation: SupportConversation, target: str, limit: int = MAX_TRANSLATED
) -> list[dict]:
    """``conversation``'s messages as JSON (``SupportMessage.to_dict``), each customer message whose
    language is known and not ``target`` with ``translation`` (:class:`Translation` as JSON; None for
    the others and for customer messages past the latest ``limit``) and ``translation_error`` (why its
    turn gave no text, else None). Translations are cached in this process.

    Raises:
        InvalidInputError (400): ``target`` is not a language clearlm can translate.
    """
    target = language_code(target, "translate_to")
    language_name(target, "translate_to")
    wanted = [
        m
        for m in conversation.messages
        if m.role == "customer" and m.language not in (None, target) and _known(m.language)
    ]
    wanted = wanted[-limit:]
    _prefetch(conversation, wanted, target)
    wanted = {m.id for m in wanted}
    out = []
    for m in conversation.messages:
        row = {**m.to_dict(), "translation": None, "translation_error": None}
        if m.id in wanted:
            key = _key(conversation, m, target)
            with _cache_lock:
                done = _cache.get(key)
            if done is None:
                try:
                    done = translate(runner, conversation.tenant, conversation.id, m.text, m.language, target)
                except TranslationFailedError as exc:  # one message's failure does not hide the rest
                    row["translation_error"] = str(exc)
                    out.append(row)
                    continue
                _keep(key, done)
            row["translation"] = done.to_dict()
        out.append(row)
    return out


def _key(conversation: SupportConversation, m, target: str) -> tuple:
    return (conversation.tenant, conversation.id, m.id, m.text, target)


def _keep(key: tuple, done: Translation) -> None:
    with _cache_lock:
        _cache[key] = done
        while len(_cache) > CACHED:
            _cache.popitem(last=False)


def _prefetch(conversation: SupportConversation, messages: list, target: str) -> None:
    """The single-line ``messages`` not yet cached whose pair an engine has, translated one engine call
    per language (``translation_engines.translate_batch``) into the cache."""
    from clearlm.apps.support.translation_engines import translate_batch

    by_language: dict[str, list] = {}
    for m in messages:
        with _cache_lock:
            cached = _key(conversation, m, target) in _cache
        if not cached and "\n" not in m.text.strip():
            by_language.setdefault(m.language, []).append(m)
    for source, group in by_language.items():
        if len(group) < 2:
            continue  # translate() does one as well
        engine, done = translate_batch([m.text for m in group], source, target)
        for m, text in zip(group, done, strict=True):
            if text is not None:
                _keep(
                    _key(conversation, m, target), Translation(text, source, target, engine, original=m.text)
                )


def agent_reply_in(
    db,
    runner,
    tenant: str,
    conversation_id: str,
    text: str,
    language: str | None,
    by: str,
    stored=None,
    engine: str = "auto",
) -> tuple:
    """An agent's reply written in ``language`` (ISO 639-1; None: no translation), translated into the
    customer's language (:func:`translate`) before it is stored as the ``agent`` message the customer
    reads (``agents.agent_reply``); ``engine``: as for :func:`translate`. ``stored``: text -> text as the
    policy stores it (None: as is). The
    original is kept on that message for the desk (``SupportMessage.original``: the text as stored, its
    language and the engine; the customer's reads leave it out); also, when the reply answers a hand-off
    item, in the item's decision ``note`` (``original (es): ...``), and in a model turn's audit record
    (its prompt). Returns ``(message, Translation or None)``.

    Raises:
        NotHandedOffError (409): the conversation is not handed off (checked before any turn).
        InvalidInputError (400): a language code clearlm cannot translate. TranslationFailedError (422).
        SupportConversationNotFoundError (404).
    """
    from clearlm.apps.support.agents import agent_reply
    from clearlm.apps.support.conversations import SupportConversations

    stored = stored or (lambda t: t)
    conversations = SupportConversations(db)
    conversation = conversations.get(tenant, conversation_id)
    if conversation.status != "handed_off" or language is None:
        return agent_reply(db, tenant, conversation_id, stored(text), by), None  # (raises NotHandedOff)
    customer = Customers(db).get(tenant, conversation.customer_id)
    done = translate(runner, tenant, conversation_id, text, language, customer.language, engine)
    if done.method == "none":
        return agent_reply(db, tenant, conversation_id, stored(text), by), done
    original = {"text": stored(text), "language": done.source, "engine": done.method}
    note = f"original ({done.source}): {stored(text)}"
    note = note if len(note) <= MAX_NOTE_CHARS else note[: MAX_NOTE_CHARS - 1] + "…"
    return agent_reply(db, tenant, conversation_id, stored(done.text), by, note, original), done
