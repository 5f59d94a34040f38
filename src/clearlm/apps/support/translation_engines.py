"""The desk's translation engines (``apps.support.translation`` uses them): which
:mod:`clearlm.translate` engine has a language pair here (:func:`engine_for`), and the desk's model as an
engine of that interface (:class:`DeskModelEngine`: a ``support:translate`` pipeline turn per text)."""

from __future__ import annotations

import dataclasses

from clearlm.apps.support.customers import language_code
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.models.chat import Message


class TranslationFailedError(ClearlmError):
    """The model gave no translation (nothing generated, or the output policy withheld it)."""

    status_code = 422
    error_type = "invalid_request_error"
    code = "translation_failed"


def language_name(code: str, what: str = "a language") -> str:
    """The English name of an ISO 639-1 code that lingua knows (``es`` -> ``Spanish``).

    Raises:
        InvalidInputError: not two letters, or a code of none of lingua's 75 languages.
    """
    from lingua import IsoCode639_1, Language

    code = language_code(code, what)
    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code)).name.title()
    except ValueError:
        raise InvalidInputError(
            f"{what} {code!r} is not a language clearlm can translate: use an ISO 639-1 code such as "
            "'en', 'es', 'de' or 'fr'"
        ) from None


def prompt(text: str, source: str, target: str) -> list[Message]:
    """The translation turn's messages: the instruction in the system message, the text alone after."""
    src, dst = language_name(source, "the source language"), language_name(target, "the target language")
    system = (
        f"You translate customer-support messages from {src} to {dst}. Write only the {dst} translation "
        "of the user's message, nothing else. Keep order numbers, names, e-mail addresses, numbers and "
        "links exactly as written."
    )
    return [Message("system", system), Message("user", text)]


def engine_for(source: str, target: str):
    """The :mod:`clearlm.translate` engine that has the pair ``source`` -> ``target`` (ISO 639-1)
    installed here: Bergamot, else a direct Apertium mode; None: the desk's model translates it.
    Apertium's pairs through Spanish are left to the model: measured, "Where is my order?" en -> es -> fr
    came back "Où Il est mon mandat?"."""
    from clearlm.translate import Pair, make_engine

    pair = Pair(source, target)
    bergamot, apertium = make_engine("bergamot"), make_engine("apertium")
    if pair in bergamot.pairs():
        return bergamot
    if pair in apertium.pairs() and pair not in apertium.pivots():
        return apertium
    return None


class DeskModelEngine:
    """The desk's model as a :mod:`clearlm.translate` engine (``translate(sentences, source, target)``):
    each text one ``support:translate`` pipeline turn of ``runner`` (a
    :class:`~clearlm.apps.support.turns.TurnRunner`) in ``conversation_id``; any two languages lingua
    knows. Greedy, at most twice the text's tokens plus 32 (at most what the model's context leaves
    after the prompt, at least 16). ``request_ids``: its turns' audit records, in order.

    Raises (translate): TranslationFailedError (422): a turn gave no text. ContextLengthError."""

    name = "model"

    def __init__(self, runner, tenant: str, conversation_id: str) -> None:
        self.runner, self.tenant, self.conversation_id = runner, tenant, conversation_id
        self.request_ids: list[str] = []

    def pairs(self) -> list:
        from lingua import Language

        from clearlm.translate import Pair

        codes = sorted(x.iso_code_639_1.name.lower() for x in Language.all())
        return [Pair(a, b) for a in codes for b in codes if a != b]

    def translate(self, sentences: list[str], source: str, target: str) -> list[str]:
        return [self._one(text, source, target) for text in sentences]

    def _one(self, text: str, source: str, target: str) -> str:
        runner = self.runner
        messages = prompt(text, source, target)
        budget = 2 * len(runner.backend.encode(text).token_ids) + 32
        room = runner.backend.context_length - len(runner.backend.encode(messages).token_ids)
        budget = max(16, min(budget, room))  # the instruction stays in the prompt while it can
        out = dataclasses.replace(runner, max_tokens=budget).generate(
            self.tenant, self.conversation_id, messages, kind="translate"
        )
        self.request_ids.append(out.request_id)
        if not out.text.strip():
            raise TranslationFailedError(
                f"the translation from {source} into {target} came back empty (the model gave no text, "
                f"or the policy withheld it, audit record {out.request_id}): write the reply in {target}, "
                "or send it without a language"
            )
        return out.text.strip()


def translate_batch(texts: list[str], source: str, target: str) -> tuple[str | None, list[str | None]]:
    """Single-line ``texts`` (a conversation's messages) translated in one call of the engine
    :func:`engine_for` picks: ``(engine name, translations)``; None for a text whose masked identifiers
    did not come back (the caller translates it on its own), and ``(None, [None, ...])`` when no engine
    has the pair or it failed. One call instead of one per message: Apertium starts its pipeline of
    programs each call (0.5 s a message here, under load).
    """
    from clearlm.errors import BackendUnavailableError
    from clearlm.translate import TranslationError, translate_segments
    from clearlm.translate.inline import mask_identifiers

    engine = engine_for(source, target)
    if engine is None or not texts:
        return None, [None] * len(texts)
    masked = [mask_identifiers(t) for t in texts]
    try:
        done, _ = translate_segments(engine, [m.text for m in masked], source, target)
    except (TranslationError, BackendUnavailableError):
        return None, [None] * len(texts)
    back = [m.restore(d) for m, d in zip(masked, done, strict=True)]
    return engine.name, [b.strip() if b and b.strip() else None for b in back]
