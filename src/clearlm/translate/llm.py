"""The LLM as a translation engine, and as the post-editor of another engine's draft (the hybrid).

Every call of the model is one pipeline turn (:func:`clearlm.pipeline.start_turn`): the input policy
scans the sentence, the output policy checks the translation, and the turn is written to the audit log
(endpoint ``translate:llm`` or ``translate:post_edit``, request id ``translate-<hex>``). A sentence is a
turn: greedy, at most twice its tokens plus 24 new tokens (less when the model's context is short).

Prompts (``style``): ``plain`` (an instruction: "Translate ... into Spanish; write only the
translation"), ``fewshot`` (the instruction and two worked examples before the sentence). A glossary's
terms found in the sentence are listed in the instruction. With ``samples=k`` the engine also samples k
translations (one more turn: temperature 0.7, nucleus 0.9, seeded) and keeps the minimum-Bayes-risk
choice among the greedy one and the samples (:mod:`clearlm.translate.mbr`). Post-editing follows the automatic
post-editing set-up (Knight & Chander 1994; recent LLM work: Raunak et al. 2023, "Leveraging GPT-4 for
automatic translation post-editing"): the source and the draft in, the corrected translation out.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from itertools import permutations

from clearlm.errors import InvalidInputError
from clearlm.models.backends.base import SamplingParams
from clearlm.models.chat import Message
from clearlm.pipeline import TurnRequest, start_turn
from clearlm.store.audit import AuditRecord
from clearlm.translate.base import Pair, check_pair, language_name, one_line
from clearlm.translate.glossary import Glossary
from clearlm.translate.mbr import mbr_select

LANGUAGES = ("en", "es", "pt", "fr", "de", "it", "ca", "gl")  # offered pairs: any two of these
STYLES = ("plain", "fewshot")
SAMPLING = {"temperature": 0.7, "top_p": 0.9, "seed": 0}  # MBR's candidates (Freitag et al. 2023)
MAX_SAMPLES = 16
EXAMPLES = {  # (English, {language: translation}), the few-shot prompt's worked examples
    "en": [
        "Your refund was sent on Tuesday, so it should arrive within five working days.",
        "Please read chapter 3 before class and bring your questions.",
    ],
    "es": [
        "Su reembolso se envió el martes, así que debería llegar en un plazo de cinco días hábiles.",
        "Por favor, lean el capítulo 3 antes de la clase y traigan sus preguntas.",
    ],
    "pt": [
        "O seu reembolso foi enviado na terça-feira, por isso deve chegar em até cinco dias úteis.",
        "Por favor, leiam o capítulo 3 antes da aula e tragam as suas perguntas.",
    ],
}
_LABEL = re.compile(
    r"^(translation|traducción|tradução|spanish|portuguese|english|español|português)\s*:\s*", re.I
)


def _clean(text: str, source: str) -> str:
    """The translation out of the model's text: its first non-empty line, without a "Translation:"
    label or quotes the source did not have."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    out = _LABEL.sub("", lines[0]) if lines else ""
    for a, b in ('""', "“”", "''", "«»"):
        if len(out) > 1 and out[0] == a and out[-1] == b and not source.startswith(a):
            out = out[1:-1].strip()
    return out


class LLMEngine:
    """A chat model as a translator, on the pipeline. ``backend``: the model; ``policy`` (None: none) and
    ``audit`` (an :class:`~clearlm.store.audit.AuditLog`; None: not recorded) as for any turn; ``tenant``
    and ``api_key_id`` go into each record; ``glossary`` terms go into the prompt; ``style``: ``plain``
    or ``fewshot``; ``samples`` (0 to 16): sampled candidates for MBR selection (0: greedy only; each
    sentence then costs about ``samples + 1`` times the greedy one). ``request_ids`` lists the audit records of its turns, in order (one engine per
    request: make a new one for each)."""

    name = "llm"
    batch_size = 4  # sentences per progress report (a turn each)

    def __init__(
        self,
        backend,
        *,
        policy=None,
        audit=None,
        tenant: str = "default",
        api_key_id: str | None = None,
        glossary: Glossary | None = None,
        style: str = "plain",
        samples: int = 0,
    ) -> None:
        if style not in STYLES:
            raise InvalidInputError(f"unknown prompt style {style!r}: choose one of {', '.join(STYLES)}")
        if not 0 <= samples <= MAX_SAMPLES:
            raise InvalidInputError(f"samples must be between 0 and {MAX_SAMPLES}, got {samples}")
        self.samples = samples
        self.backend, self.policy, self.audit = backend, policy, audit
        self.tenant, self.api_key_id, self.glossary, self.style = tenant, api_key_id, glossary, style
        self.request_ids: list[str] = []

    def pairs(self) -> list[Pair]:
        return sorted(Pair(a, b) for a, b in permutations(LANGUAGES, 2))

    def translate(self, sentences: list[str], source: str, target: str) -> list[str]:
        """One translation per sentence, each one pipeline turn.

        Raises:
            UnsupportedPairError; ContextLengthError (a sentence too long for the model);
            PolicyViolationError (a policy that answers blocks with an error).
        """
        pair = check_pair(self, source, target)
        return [self._one(s, pair, None) for s in sentences]

    def post_edit(self, sentences: list[str], drafts: list[str], source: str, target: str) -> list[str]:
        """Each draft translation corrected by the model, given its source sentence (one turn each)."""
        pair = check_pair(self, source, target)
        return [self._one(s, pair, d) for s, d in zip(sentences, drafts, strict=True)]

    def _instructions(self, sentence: str, pair: Pair, draft: str | None) -> str:
        src, dst = language_name(pair.source), language_name(pair.target)
        if draft is None:
            text = (
                f"Translate the user's {src} text into {dst}. Write only the {dst} translation, nothing "
                "else. Keep names, numbers, codes, e-mail addresses and links exactly as written."
            )
        else:
            text = (
                f"You are a professional translator. The user gives an {src} sentence and a draft {dst} "
                f"translation made by a machine. Write the corrected {dst} translation: fix wrong word "
                "choices, word order, grammar and agreement, keep what is already right and keep the "
                f"meaning of the {src} sentence. Write only the corrected {dst} translation, nothing else."
            )
        terms = self.glossary.prompt_lines(sentence) if self.glossary else []
        if terms:
            text += f" Translate these terms exactly as given ({src} -> {dst}): " + "; ".join(terms) + "."
        return text

    def _examples(self, pair: Pair) -> list[Message]:
        if self.style != "fewshot" or pair.source not in EXAMPLES or pair.target not in EXAMPLES:
            return []
        out = []
        for s, t in zip(EXAMPLES[pair.source], EXAMPLES[pair.target], strict=True):
            out += [Message("user", s), Message("assistant", t)]
        return out

    def _one(self, sentence: str, pair: Pair, draft: str | None) -> str:
        text = one_line(sentence)
        if not text:
            return ""
        src, dst = language_name(pair.source), language_name(pair.target)
        user = text if draft is None else f"{src}: {text}\nDraft {dst}: {one_line(draft)}"
        examples = self._examples(pair) if draft is None else []
        prompt = [*examples, Message("user", user)]
        instructions = self._instructions(text, pair, draft)
        budget = 2 * len(self.backend.encode(text).token_ids) + 24
        room = self.backend.context_length - len(
            self.backend.encode([Message("system", instructions), *prompt]).token_ids
        )
        budget = max(1, min(budget, room, 1024))  # a prompt too long is refused by the pipeline
        kind = "llm" if draft is None else "post_edit"
        params = SamplingParams(max_new_tokens=budget)
        outs = [
            _clean(t, text) for t in self._turn(prompt, instructions, params, 1, kind, pair, len(examples))
        ]
        if draft is None and self.samples:
            params = SamplingParams(max_new_tokens=budget, **SAMPLING)
            got = self._turn(prompt, instructions, params, self.samples, kind, pair, len(examples))
            outs = [mbr_select(outs + [_clean(t, text) for t in got]).text]
        if not outs[0] and draft is not None:
            return one_line(draft)  # an empty post-edit keeps the draft
        return outs[0]

    def _turn(
        self, prompt, instructions: str, params, n: int, kind: str, pair: Pair, examples: int
    ) -> list[str]:
        """The texts of one audited pipeline turn with ``n`` choices."""
        record = AuditRecord(
            request_id=f"translate-{secrets.token_hex(8)}",
            created_at=datetime.now(UTC),
            endpoint=f"translate:{kind}",
            api_key_id=self.api_key_id,
            tenant=self.tenant,
        )
        request = TurnRequest(
            prompt,
            params,
            n=n,
            origin={"translation": str(pair)},
            instructions=instructions,
            screened=tuple(range(examples)),  # the worked examples are clearlm's own text
        )
        turn = start_turn(self.backend, request, record, self.audit, self.policy).run()
        self.request_ids.append(record.request_id)
        return [c.text for c in turn.choices]


class HybridEngine:
    """``draft`` (an engine: Apertium, Bergamot) translates; ``editor`` (an :class:`LLMEngine`) post-edits
    each draft. Its pairs are the draft engine's."""

    name = "hybrid"
    batch_size = 4

    def __init__(self, draft, editor: LLMEngine) -> None:
        self.draft, self.editor = draft, editor
        self.name = f"hybrid:{draft.name}"

    @property
    def request_ids(self) -> list[str]:
        return self.editor.request_ids

    def pairs(self) -> list[Pair]:
        have = set(self.editor.pairs())
        return [p for p in self.draft.pairs() if p in have]

    def translate(self, sentences: list[str], source: str, target: str) -> list[str]:
        """The draft engine's translations, each post-edited by the LLM (one pipeline turn a sentence)."""
        pair = check_pair(self, source, target)
        drafts = self.draft.translate(sentences, pair.source, pair.target)
        return self.editor.post_edit(sentences, drafts, pair.source, pair.target)
