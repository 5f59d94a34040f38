"""Rubric grading with evidence (issue 16): :class:`Grader` scores a learner's answer 0-2 against a
:class:`~clearlm.apps.classroom.rubrics.Rubric`, AnalyticScore-like: every input of the grade is traced to
the rubric, and the grade comes with a calibrated confidence, feedback per criterion and the spans of the
answer that drove it.

How a grade is made (``Grader.grade``):

1. Bad input: an answer over :data:`MAX_ANSWER_CHARS` (20,000) characters raises :class:`GradingError`
   (nothing is cut); an empty one (no letter or digit) scores 0 with feedback saying it is empty, without
   a model call.
2. Manipulation: the spans the prompt-injection scanner flags (``grading_text.screen``) are removed and
   listed in ``findings``; an answer of such spans only scores 0. Either way the grade goes to review.
3. Per criterion, one pipeline turn: the model's probability of each level; per key point, one turn: the
   model's probability that the answer makes it (``grading_model``).
4. Without the model: similarity to the reference, key-point coverage, length, language
   (``grading_text``).
5. The calibrated combination (``grading_calibration``): P(score = 0, 1, 2); the grade is the likeliest,
   ``confidence`` its probability. The levels reported per criterion are the likeliest combination that
   gives that score, with the level's descriptor and the key points missed as feedback.
6. Review: ``needs_review`` with ``review_reasons`` when the confidence is under ``review_below`` (0.6),
   the score is 1 (partial: LLM graders are weakest there, issue 16), the scanner flagged the answer, the
   answer is not in English (graded on content; a teacher should check), or the model is uncalibrated.
   The flag is what a review queue would read; the queue item itself is not written here yet.
7. Evidence (``evidence=True``): occlusion (Zeiler & Fergus 2014; Li et al. 2016, "Understanding neural
   networks through representation erasure"): each span (a sentence, or 6-word windows for a one-sentence
   answer; at most ``max_spans``, neighbours merged) is dropped and the criterion re-scored; its effect
   is the drop in the criterion's expected points. The ``top_spans`` largest effects are kept. Cost: one
   turn per span and criterion (cached per text).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import numpy as np

from clearlm.apps.classroom import grading_text as gt
from clearlm.apps.classroom.grading_calibration import Calibration, consistent_levels, model_features
from clearlm.apps.classroom.grading_model import LevelReader
from clearlm.apps.classroom.rubrics import Rubric
from clearlm.errors import InvalidInputError

MAX_ANSWER_CHARS = 20_000
REVIEW_BELOW = 0.6
EMPTY_FEEDBACK = "Your answer is empty: write what you know about the question, even if you are unsure."


class GradingError(InvalidInputError):
    """An answer that cannot be graded (over 20,000 characters); the message says what to do."""


@dataclass(slots=True)
class CriterionGrade:
    """One criterion's result: the level given (``points``, ``descriptor``), the model's ``probabilities``
    of each level ({points: p}), ``expected_points`` under them, ``feedback`` for the learner, and
    ``evidence``: the spans that moved its expected points most, each {"text", "start", "end",
    "effect"} (offsets in the answer; effect in points: positive when the span earned points)."""

    criterion_id: str
    points: int
    descriptor: str
    probabilities: dict[int, float]
    expected_points: float
    feedback: str
    evidence: list[dict] = field(default_factory=list)


@dataclass(slots=True)
class Grade:
    """A graded answer: ``score`` (0-2), ``probabilities`` (P(0), P(1), P(2)), ``confidence`` (the
    score's probability), ``criteria``, ``similarity`` (to the reference), ``coverage`` ({key point:
    best sentence similarity}), ``key_points_made`` ({key point: the model's probability that the
    answer makes it}), ``missed_key_points``, ``language`` (ISO 639-1 or None), ``findings``
    (the spans removed as instructions to the grader), ``needs_review`` and ``review_reasons``, the
    rubric's ``rubric_id`` and ``rubric_version``, the ``model``, and ``grading_id`` (the prefix of its
    turns' audit request ids)."""

    rubric_id: str
    rubric_version: int
    model: str
    grading_id: str
    score: int
    probabilities: tuple[float, float, float]
    confidence: float
    criteria: list[CriterionGrade]
    similarity: float | None = None
    coverage: dict[str, float] = field(default_factory=dict)
    key_points_made: dict[str, float] = field(default_factory=dict)
    missed_key_points: list[str] = field(default_factory=list)
    language: str | None = None
    findings: list[dict] = field(default_factory=list)
    needs_review: bool = False
    review_reasons: list[str] = field(default_factory=list)
    features: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Grader:
    """Grades answers with ``backend`` (through the pipeline: ``audit`` and ``policy`` as for any turn),
    the ``embedder`` (default: the packaged all-MiniLM-L6-v2) and the injection ``scanner`` (default: the
    policy's ``prompt_injection`` scanner on that embedder). ``calibration``: default, the packaged one
    for the backend's model."""

    backend: object
    audit: object | None = None
    policy: object | None = None
    embedder: object | None = None
    scanner: object | None = None
    calibration: Calibration | None = None
    review_below: float = REVIEW_BELOW
    max_spans: int = 6
    top_spans: int = 3
    reader: LevelReader = field(init=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.embedder is None:
            from clearlm.knowledge.base import default_embedder

            self.embedder = default_embedder()
        if self.scanner is None:
            from clearlm.govern.injection import InjectionScanner

            self.scanner = InjectionScanner(self.embedder)
        if self.calibration is None:
            self.calibration = Calibration.for_model(self.backend.name)
        self.reader = LevelReader(self.backend, self.audit, self.policy)

    def grade(self, rubric: Rubric, answer: str, evidence: bool = False) -> Grade:
        """The :class:`Grade` of ``answer`` under ``rubric`` (see the module docstring).

        Raises:
            GradingError: the answer has more than 20,000 characters (shorten it or split the question).
        """
        if len(answer) > MAX_ANSWER_CHARS:
            raise GradingError(
                f"the answer has {len(answer):,} characters; answers are graded up to "
                f"{MAX_ANSWER_CHARS:,}: shorten it (nothing was graded)"
            )
        gid = f"grade-{secrets.token_hex(6)}"
        if not any(c.isalnum() for c in answer):
            return self._zero(rubric, gid, EMPTY_FEEDBACK, [], ["empty answer"])
        screened = gt.screen(answer, self.scanner)
        reasons = []
        if screened.removed or screened.whole_flagged:
            reasons.append("instructions to the grader in the answer")
        if not any(c.isalnum() for c in screened.text):
            return self._zero(
                rubric,
                gid,
                "Your answer holds only instructions to the grader, not an answer.",
                screened.removed,
                reasons,
            )
        text = screened.text
        levels = {c.id: self._levels(rubric, c, text, gid) for c in rubric.criteria}
        made = [self.reader.key_point(rubric, k, text, gid) for k in rubric.key_points]
        tf = gt.text_features(self.embedder, text, rubric.reference_answer, rubric.key_points)
        features = model_features(rubric, levels, made) + tf.vector()
        probs = self.calibration.predict(features)
        score = int(np.argmax(probs))
        chosen = consistent_levels(rubric, levels, score)
        missed = [k for k, v in zip(rubric.key_points, tf.coverage, strict=True) if v < gt.COVERED]
        criteria = []
        for c in rubric.criteria:
            lv = c.levels[chosen[c.id]]
            feedback = lv.descriptor
            if lv.points < c.max_points and missed:
                feedback += " Not yet in your answer: " + "; ".join(missed) + "."
            criteria.append(
                CriterionGrade(
                    c.id,
                    lv.points,
                    lv.descriptor,
                    {x.points: round(float(p), 4) for x, p in zip(c.levels, levels[c.id], strict=True)},
                    round(_expected(c, levels[c.id]), 4),
                    feedback,
                )
            )
        if evidence:
            self._evidence(rubric, answer, screened, criteria, gid)
        confidence = float(probs[score])
        if confidence < self.review_below:
            reasons.append(f"low confidence ({confidence:.2f})")
        if score == 1:
            reasons.append("partial score")
        if not tf.english:
            reasons.append(f"answer in another language ({tf.language}): graded on content")
        if not self.calibration.calibrated:
            reasons.append(f"uncalibrated model {self.backend.name}")
        return Grade(
            rubric.id,
            rubric.version,
            self.backend.name,
            gid,
            score,
            tuple(round(float(p), 4) for p in probs),
            round(confidence, 4),
            criteria,
            round(tf.similarity, 4),
            {k: round(v, 4) for k, v in zip(rubric.key_points, tf.coverage, strict=True)},
            {k: round(v, 4) for k, v in zip(rubric.key_points, made, strict=True)},
            missed,
            tf.language,
            screened.removed,
            bool(reasons),
            reasons,
            [round(f, 6) for f in features],
        )

    def _levels(self, rubric: Rubric, criterion, text: str, gid: str) -> np.ndarray:
        key = (rubric.id, rubric.version, criterion.id, text)
        if key not in self._cache:
            self._cache[key] = self.reader.levels(rubric, criterion, text, gid)
        return self._cache[key]

    def _zero(self, rubric: Rubric, gid: str, feedback: str, findings: list, reasons: list) -> Grade:
        criteria = [
            CriterionGrade(c.id, 0, c.levels[-1].descriptor, {}, 0.0, feedback) for c in rubric.criteria
        ]
        return Grade(
            rubric.id,
            rubric.version,
            self.backend.name,
            gid,
            0,
            (1.0, 0.0, 0.0),
            1.0,
            criteria,
            findings=findings,
            missed_key_points=list(rubric.key_points),
            needs_review=bool(reasons) and reasons != ["empty answer"],
            review_reasons=reasons,
        )

    def _evidence(self, rubric: Rubric, answer: str, screened, criteria: list, gid: str) -> None:
        flagged = [gt.Span(r["text"], r["start"], r["end"]) for r in screened.removed]
        kept = [s for s in gt.segments(answer) if all(s.start != f.start for f in flagged)]
        if len(kept) == 1:
            one = kept[0]
            kept = [gt.Span(w.text, one.start + w.start, one.start + w.end) for w in gt.windows(one.text)]
        spans = _merged(kept, self.max_spans)
        for c, cg in zip(rubric.criteria, criteria, strict=True):
            effects = []
            for span in spans:
                rest = gt.without(answer, [*flagged, span])
                after = _expected(c, self._levels(rubric, c, rest, gid)) if rest else 0.0
                effects.append((cg.expected_points - after, span))
            effects.sort(key=lambda e: -abs(e[0]))
            cg.evidence = [
                {"text": s.text, "start": s.start, "end": s.end, "effect": round(float(e), 4)}
                for e, s in effects[: self.top_spans]
            ]


def _expected(criterion, probs: np.ndarray) -> float:
    return float(np.dot([lv.points for lv in criterion.levels], probs))


def _merged(spans: list[gt.Span], most: int) -> list[gt.Span]:
    """``spans`` merged with their neighbours into at most ``most`` spans (reading order kept)."""
    if len(spans) <= most:
        return spans
    size = -(-len(spans) // most)
    out = []
    for i in range(0, len(spans), size):
        group = spans[i : i + size]
        out.append(gt.Span(" ".join(s.text for s in group), group[0].start, group[-1].end))
    return out
