"""Which bible entries shaped a paragraph: context attribution (``clearlm.explain.context``: ContextCite
ablations, Cohen-Wang et al. 2024) with the bible entries in the scene's context as the sources.

The paragraph is scored, teacher-forced, after the prompt a draft would have had: the bible entries, the
scene's title and beats, and the scene's text before the paragraph; each entry is left out in turn (every
subset when 2^n fits in the ablation budget) and a sparse linear surrogate gives each entry its weight
(logit units: how much keeping it raises the paragraph's score). The paragraph is the forced target of a
pipeline turn (checked by the policy and audited, endpoint ``studio:attribute``), and the attribution
runs as that turn's settlement, so its record says whether it succeeded.
"""

from __future__ import annotations

from clearlm.apps.studio import bible as bib
from clearlm.apps.studio.projects import StudioError
from clearlm.apps.studio.turns import Asker, instructions
from clearlm.errors import BackendUnavailableError
from clearlm.models.backends.base import SamplingParams
from clearlm.pipeline import TurnRequest, start_turn


def paragraphs(text: str) -> list[tuple[int, int]]:
    """[start, end) of each non-blank paragraph (blocks between blank lines) of ``text``."""
    out, at = [], 0
    for block in text.split("\n\n"):
        stripped = block.strip()
        if stripped:
            lead = len(block) - len(block.lstrip())
            out.append((at + lead, at + lead + len(stripped)))
        at += len(block) + 2
    return out


def attribute_paragraph(asker: Asker, text: str, index: int, entries: list[bib.BibleEntry], title: str,
                        beats: list[str], style: dict | None = None, ablations: int = 16,
                        project_id: str | None = None) -> dict:  # fmt: skip
    """How much each of ``entries`` shaped paragraph ``index`` of the scene ``text``.

    Returns {"paragraph": {index, start, end, text}, "entries": [{id, name, kind, weight, drop}] largest
    weight first, "lds", "exact", "full_score", "request_id", "model"}: ``weight`` is the surrogate's
    (LASSO: 0 for an entry whose effect is too small to keep), ``drop`` the paragraph's score with every
    entry minus its score without that one; both in logit units of the paragraph's mean token probability.

    Raises:
        StudioError: no such paragraph, or no bible entry in the scene's context.
        BackendUnavailableError: the backend is not torch (attribution scores with gradients' model).
    """
    from clearlm.explain.context import context_attribution

    if getattr(asker.backend, "kind", None) != "torch":
        raise BackendUnavailableError(
            "attributing a paragraph needs the torch backend: serve the model with it"
        )
    spans = paragraphs(text)
    if not 0 <= index < len(spans):
        raise StudioError(f"the scene has {len(spans)} paragraph(s); choose one from 0 to {len(spans) - 1}")
    if not entries:
        raise StudioError(
            "no bible entry is in this scene's context: name a character or place the bible has"
        )
    start, end = spans[index]
    beat_lines = "\n".join(f"- {b}" for b in beats) or f"- {title}"
    before = text[:start].strip()
    after = f"\n\nScene: {title}\nBeats:\n{beat_lines}\n\n" + (
        f"The scene so far:\n{before}\n\nWrite the next paragraph."
        if before
        else "Write the first paragraph."
    )
    sources = bib_sources(entries, after, instructions(style))
    paragraph = text[start:end]
    record = asker.record("attribute")
    record.parameters = {"ablations": ablations}
    request = TurnRequest(sources.render([True] * len(entries)), SamplingParams(), target=paragraph,
                          origin={"studio_project": project_id})  # fmt: skip
    turn = start_turn(asker.backend, request, record, asker.audit, asker.policy, deferred=True).run()

    def attribute():
        with asker.backend.lock:
            return context_attribution(
                asker.backend, sources, turn.choices[0].text, ablations=ablations, gradient=False
            )

    result = turn.settle(attribute)
    drops = _drops(result)
    ranked = [
        {**_ref(entries[i]), "weight": float(result.weights[i]), "drop": drops[i]} for i in result.ranking()
    ]
    return {"paragraph": {"index": index, "start": start, "end": end, "text": paragraph}, "entries": ranked,
            "lds": None if result.lds != result.lds else float(result.lds), "exact": bool(result.exact),
            "full_score": result.full_score,
            "request_id": record.request_id, "model": asker.model}  # fmt: skip


def _drops(result) -> list[float | None]:
    """Per source, the score with every source kept minus the score with only that one left out (logit
    units; None when that ablation was not scored)."""
    full = result.full_score
    out: list[float | None] = []
    for i in range(result.n_sources):
        alone = [k for k, m in enumerate(result.masks) if not m[i] and m.sum() == result.n_sources - 1]
        out.append(float(full - result.scores[alone[0]]) if alone else None)
    return out


def bib_sources(entries: list[bib.BibleEntry], after: str, system: str):
    """The prompt as ContextSources: one source per entry (its rendered line), in the user message after
    "Story bible:" and before ``after``, under the system text ``system``."""
    from clearlm.explain.context import ContextSources

    return ContextSources.in_message([bib.render([e]) for e in entries], before="Story bible:\n", after=after,
                                     separator="\n", system=system)  # fmt: skip


def _ref(e: bib.BibleEntry) -> dict:
    return {"id": e.id, "name": e.name, "kind": e.kind}
