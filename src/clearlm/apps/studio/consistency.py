"""Does a scene contradict the story bible? Two passes, each flag shown as the two passages side by side
(the bible's sentence and the scene's):

1. Rules (:mod:`clearlm.apps.studio.facts`): the same attribute of the same entry (eye colour, the year
   of an event) with another value. Certain when it fires; no model.
2. Retrieval plus the model: each scene sentence about a bible entry (naming it, or a pronoun after a
   character was named: ``facts.about``) is embedded (all-MiniLM-L6-v2, ``clearlm.models.embeddings``)
   with the sentences of the entries it is about; the ``per_sentence`` most similar of them (cosine >=
   ``min_similarity``; MiniLM gives short related sentences 0.2 to 0.5) are paired with it, and
   the model is asked, one pipeline turn per pair, whether the scene sentence contradicts the bible
   sentence ("Yes"/"No"; the probability of "Yes" read from the first token's log-probabilities,
   renormalised over the two, as an LLM judge's answer-option probabilities, G-Eval, Liu et al. 2023).
   A pair with P(yes) >= ``threshold`` is flagged. Pairs the rules flagged are not asked again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clearlm.apps.studio import bible as bib
from clearlm.apps.studio import facts as fx
from clearlm.apps.studio.turns import Asker
from clearlm.models.backends.base import SamplingParams

JUDGE = "You check a novel's draft against its story bible. Answer with one word: Yes or No."
QUESTION = (
    "Story bible: {fact}\nSentence from a draft: {sentence}\n\nDoes the sentence from the draft contradict "
    "the story bible (a different colour, name, date, place or fact)? Answer Yes or No."
)


@dataclass(slots=True)
class Flag:
    """A contradiction: the ``entry`` ({id, name, kind}), the two passages (``bible`` sentence, ``scene``
    sentence with its [start, end) in the scene text), how it was found (``method`` "rule" or "model"),
    the ``attribute`` and both values (rules), or the model's ``p_contradiction`` and the ``similarity``."""

    entry: dict
    bible: str
    scene: str
    start: int
    end: int
    method: str
    attribute: str | None = None
    bible_value: str | None = None
    scene_value: str | None = None
    p_contradiction: float | None = None
    similarity: float | None = None
    request_id: str | None = None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class Check:
    """A scene's check: the ``flags``, the number of sentence pairs the model was asked about
    (``pairs_asked``), how many of those it answered neither yes nor no (``unanswered``), and the entries
    in the scene's context (``entries``)."""

    flags: list[Flag] = field(default_factory=list)
    pairs_asked: int = 0
    unanswered: int = 0
    entries: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "flags": [f.to_dict() for f in self.flags],
            "pairs_asked": self.pairs_asked,
            "unanswered": self.unanswered,
            "entries": self.entries,
        }


def rule_flags(text: str, entries: list[bib.BibleEntry]) -> list[Flag]:
    """Pass 1: the contradictions of simple facts between ``text`` and ``entries`` (no model)."""
    known: dict[tuple[str, str], list[fx.Fact]] = {}
    for e in entries:
        for f in fx.entry_facts(e):
            known.setdefault((e.id, f.attribute), []).append(f)
    flags = []
    for entry, f in fx.scene_facts(text, entries):
        said = known.get((entry.id, f.attribute), [])
        if said and all(b.value != f.value for b in said):
            b = said[0]
            flags.append(
                Flag(
                    _ref(entry), b.sentence, f.sentence, f.start, f.end, "rule", f.attribute, b.value, f.value
                )
            )
    return flags


def check_scene(text: str, entries: list[bib.BibleEntry], asker: Asker | None = None, embedder=None, *,
                per_sentence: int = 1, min_similarity: float = 0.2, threshold: float = 0.5,
                max_pairs: int = 12, project_id: str | None = None) -> Check:  # fmt: skip
    """Check a scene's ``text`` against the bible ``entries`` (those in its context: ``bible.in_context``).
    Without ``asker`` only the rules run; the model pass needs ``embedder`` too (an ``Embedder``).
    ``max_pairs`` bounds the turns (the most similar pairs first)."""
    out = Check(entries=[_ref(e) for e in entries])
    out.flags = rule_flags(text, entries)
    if asker is None or embedder is None or not entries:
        return out
    flagged = {(f.start, f.bible) for f in out.flags}
    facts = [(e, s) for e in entries if e.kind not in bib.ALWAYS for _, _, s in fx.sentences(e.text)]
    scene = fx.about(text, entries)
    if not facts or not scene:
        return out
    vectors = embedder.encode([s for _, s in facts] + [s for _, _, s, _ in scene])
    sims = vectors[len(facts) :] @ vectors[: len(facts)].T  # float32[n_scene, n_facts], cosine
    pairs = []
    for i, (st, _, _, subjects) in enumerate(scene):
        ids = {e.id for e in subjects}
        mine = [j for j, (e, _) in enumerate(facts) if e.id in ids]  # the facts of what the sentence is about
        for j in sorted(mine, key=lambda j: -sims[i, j])[:per_sentence]:
            if sims[i, j] >= min_similarity and (st, facts[j][1]) not in flagged:
                pairs.append((float(sims[i, j]), i, j))
    pairs.sort(reverse=True)
    for sim, i, j in pairs[:max_pairs]:
        st, en, s, _ = scene[i]
        entry, fact = facts[j]
        p, request_id = contradiction_probability(asker, fact, s, project_id)
        out.pairs_asked += 1
        out.unanswered += p is None
        if p is not None and p >= threshold:
            out.flags.append(Flag(_ref(entry), fact, s, st, en, "model", p_contradiction=p, similarity=sim,
                                  request_id=request_id))  # fmt: skip
    out.flags.sort(key=lambda f: f.start)
    return out


def contradiction_probability(
    asker: Asker, fact: str, sentence: str, project_id: str | None = None
) -> tuple[float | None, str]:
    """P("Yes") of the model asked whether ``sentence`` contradicts ``fact`` (one token generated, its 20
    likeliest alternatives read; spellings "Yes", " yes", ... summed), renormalised over Yes and No
    (None when neither is among them: the model did not answer, and nothing is flagged), and the turn's
    audit request id."""
    params = SamplingParams(max_new_tokens=1, logprobs=20)
    text = QUESTION.format(fact=fact, sentence=sentence)
    asked = asker.ask("check", text, {}, params, project_id=project_id, role=JUDGE)
    choice = asked.turn.choices[0]
    yes = no = 0.0
    for token_id, logprob in choice.logprobs[0].top if choice.logprobs else ():
        word = asker.backend.decode([token_id]).strip().lower()
        if word == "yes":
            yes += float(np.exp(logprob))
        elif word == "no":
            no += float(np.exp(logprob))
    return (yes / (yes + no) if yes + no > 0 else None), asked.request_id


def _ref(e: bib.BibleEntry) -> dict:
    return {"id": e.id, "name": e.name, "kind": e.kind}
