"""The hand-off rules a desk applies after each customer message (issue 15), besides the hand-offs the
desk and its flows make themselves (the customer asks for a person, a policy ``escalate``, invalid
answers, a failed tool, a flow's ``handoff`` step). A person takes over, with the review item's
``reason``:

- ``negative_sentiment``: the VADER compound score (Hutto & Gilbert 2014, the ``vaderSentiment``
  package; -1 most negative to +1 most positive) of each customer message: the last
  ``sentiment_window`` (3) scored messages all below ``sentiment_below`` (-0.35), or one message below
  ``sentiment_strong`` (-0.85). VADER reads English only: for a customer whose language is not ``en``
  nothing is scored and this rule never fires. Measured scores (vaderSentiment 3.3.2) behind the
  defaults: "no" -0.296, "That did not help." -0.309 (so a curt answer does not count);
  "This is ridiculous, my order is late again." -0.361, "I am really angry, nobody answers my emails!"
  -0.597, "This is the worst service ever. Terrible!" -0.817 (they count towards the window); "I am
  very disappointed, the kettle arrived broken." -0.757 and "My package was stolen, I am devastated."
  -0.802 describe the trouble the desk is there for, so one of them alone does not hand off;
  "You are useless. I hate this shop, worst experience ever!!!" -0.910 does.
- ``repeated_failure``: ``max_failures`` (2) customer turns in a row in which the desk failed: a
  generated reply (free, or from a knowledge base) that abstains ("The documents do not say",
  ``knowledge.quotes.is_abstention``) or was refused by the output policy (an empty reply is not
  judged: a random test model gives them); or a flow's ``fallback`` step ran (its question was answered invalidly ``max_invalid`` times). A turn without
  such a failure ends the run.
- ``low_confidence``: a generated reply whose mean token probability (``TurnOutcome.confidence``: the
  mean of exp(log-probability) of its chosen tokens, 0-1) is below ``min_confidence``. Off (None) by
  default: the value depends on the model (the tiny random test model scores about 1/300, its
  vocabulary), and it is a weak signal: measured on qwen2.5-0.5b-instruct (greedy, 48 tokens, the desk's
  system prompt, 2026-12-02), eight customer questions scored 0.654-0.864, the invented answers among
  them as high as the sound ones ("Our opening hours are from 9:00 AM to 5:00 PM." 0.805, a made-up
  warranty 0.809; "Der Versand dauert 2-3 Tage." 0.654). A desk that sets it (0.5 for that model: below
  everything measured) catches only a model far off its ground. A reply without log-probabilities (the
  output policy changed it, or nothing was generated) is not judged.

The review item's payload carries ``sentiment``: the mean score of the customer's latest
``sentiment_window`` scored messages (None when none was scored).

What the rules need across turns is kept in the conversation's ``signals`` column (JSON):
``{"sentiment": [[message id, score], ...], "failures": n, "since": message id}``: the latest 20 scores,
the current run of failed turns, and the last message of the latest hand-off (older scores do not count
towards a new hand-off after a hand-back; messages written while a person has the chat are not scored).
A desk folder may change the rules in ``desk.yaml``::

    handoff:
      sentiment_window: 3
      sentiment_below: -0.35
      sentiment_strong: -0.85     # null: no single-message hand-off
      max_failures: 2
      min_confidence: 0.3         # null (default): off
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import update

from clearlm.apps.support.flows import Flow, FlowError
from clearlm.apps.support.state import CustomerMessage, FlowState
from clearlm.knowledge.quotes import is_abstention
from clearlm.pipeline.turn import CONTENT_FILTER, FORCED
from clearlm.store.db import Database
from clearlm.store.tables import SupportConversationRow

KEPT_SCORES = 20  # sentiment scores kept per conversation
SENTIMENT_LANGUAGES = ("en",)  # what VADER's lexicon reads


@dataclass(frozen=True, slots=True)
class HandoffRules:
    """When a person takes over (see the module's description for each rule and its measured scores).

    Fields: sentiment_window (customer messages, 1-20); sentiment_below (compound score, -1..1);
    sentiment_strong (compound score, or None: off); max_failures (turns in a row, >= 1, or None: off);
    min_confidence (mean token probability 0-1, or None: off).

    Raises:
        FlowError (400): a value out of range.
    """

    sentiment_window: int = 3
    sentiment_below: float = -0.35
    sentiment_strong: float | None = -0.85
    max_failures: int | None = 2
    min_confidence: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sentiment_window, int) or not 1 <= self.sentiment_window <= KEPT_SCORES:
            raise FlowError(
                f"handoff.sentiment_window is 1-{KEPT_SCORES} messages, not {self.sentiment_window!r}"
            )
        for name in ("sentiment_below", "sentiment_strong"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or not -1 <= value <= 1):
                raise FlowError(f"handoff.{name} is a VADER compound score from -1 to 1, not {value!r}")
        if self.max_failures is not None and (
            not isinstance(self.max_failures, int) or self.max_failures < 1
        ):
            raise FlowError(
                f"handoff.max_failures is a number of turns (1 or more), not {self.max_failures!r}"
            )
        value = self.min_confidence
        if value is not None and (not isinstance(value, int | float) or not 0 <= value <= 1):
            raise FlowError(f"handoff.min_confidence is a mean token probability from 0 to 1, not {value!r}")


def load_rules(folder: str | Path) -> HandoffRules:
    """The rules of a desk folder: its ``desk.yaml``'s ``handoff`` mapping over the defaults (the
    defaults when there is no ``desk.yaml`` or it has no ``handoff``).

    Raises:
        FlowError (400): unreadable YAML, an unknown key (the message lists the known ones), a bad value.
    """
    path = Path(folder) / "desk.yaml"
    if not path.is_file():
        return HandoffRules()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FlowError(f"cannot read the desk file {path}: {exc}") from None
    given = data.get("handoff") if isinstance(data, dict) else None
    if given is None:
        return HandoffRules()
    known = [f.name for f in dataclasses.fields(HandoffRules)]
    if not isinstance(given, dict) or set(given) - set(known):
        raise FlowError(f"{path}: handoff is a mapping of {', '.join(known)}")
    return HandoffRules(**given)


@functools.cache
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER's compound score of ``text`` (English): -1 (most negative) to +1 (most positive)."""
    return float(_analyzer().polarity_scores(text)["compound"])


@dataclass(slots=True)
class Signals:
    """A conversation's ``signals`` (see the module's description)."""

    sentiment: list[list] = field(default_factory=list)  # [[message id, score], ...], oldest first
    failures: int = 0
    since: int = 0

    @classmethod
    def from_json(cls, data: dict | None) -> Signals:
        data = data or {}
        return cls(list(data.get("sentiment", [])), int(data.get("failures", 0)), int(data.get("since", 0)))

    def to_json(self) -> dict:
        return {"sentiment": self.sentiment, "failures": self.failures, "since": self.since}

    def recent(self, n: int, fresh: bool = False) -> list[float]:
        """The latest ``n`` scores (with ``fresh``: only those after the latest hand-off), oldest first."""
        scores = [s for i, s in self.sentiment if not fresh or i > self.since]
        return scores[-n:]


def read_signals(db: Database, tenant: str, conversation_id: str) -> Signals:
    with db.session() as session:
        row = session.get(SupportConversationRow, conversation_id)
        return Signals.from_json(row.signals if row is not None and row.tenant == tenant else None)


def _write(db: Database, tenant: str, conversation_id: str, signals: Signals) -> None:
    with db.writing() as session:
        session.execute(
            update(SupportConversationRow)
            .where(SupportConversationRow.id == conversation_id, SupportConversationRow.tenant == tenant)
            .values(signals=signals.to_json())
        )


def record_message(db: Database, tenant: str, conversation_id: str, message_id: int, text: str, language):
    """Score the customer's message ``text`` (stored as ``message_id``) and keep the score; None (nothing
    kept) when ``language`` is not English. Returns the score."""
    if language not in SENTIMENT_LANGUAGES:
        return None
    signals = read_signals(db, tenant, conversation_id)
    score = round(sentiment(text), 4)
    signals.sentiment = [*signals.sentiment, [message_id, score]][-KEPT_SCORES:]
    _write(db, tenant, conversation_id, signals)
    return score


def mean_sentiment(db: Database, tenant: str, conversation_id: str, window: int) -> float | None:
    """The mean score of the conversation's latest ``window`` scored customer messages (None: none)."""
    scores = read_signals(db, tenant, conversation_id).recent(window)
    return round(sum(scores) / len(scores), 4) if scores else None


def failure(outcome) -> str | None:
    """Why a desk turn's outcome (a ``TurnOutcome``) failed: ``abstained`` or ``refused``; None when it
    did not, or when it was a fixed reply (nothing generated) or empty."""
    if outcome.finish_reason == FORCED:
        return None
    if outcome.finish_reason == CONTENT_FILTER:
        return "refused"
    return "abstained" if is_abstention(outcome.text) else None


def fell_back(flow: Flow, before: FlowState | None, after: FlowState, event) -> bool:
    """Whether advancing ``flow`` from ``before`` with ``event`` ran its ``fallback`` step: the customer's
    answer to the pending question was invalid once too often (``max_invalid``), and the flow has one."""
    if flow.fallback is None or before is None or not isinstance(event, CustomerMessage):
        return False
    if event.digression or before.waiting != "slot" or before.step is None or after.status == "cancelled":
        return False
    if event.intent in flow.handoff_intents:
        return False
    ask = flow.step(before.step).ask
    tries = ask.max_invalid or flow.max_invalid
    return before.invalid + 1 >= tries and ask.slot not in after.slots


def sentiment_due(rules: HandoffRules, scores: list[float]) -> tuple[str, str] | None:
    """``("negative_sentiment", detail)`` when the latest ``scores`` (oldest first) call for a person:
    the last ``sentiment_window`` all below ``sentiment_below``, or the last below ``sentiment_strong``."""
    window = rules.sentiment_window
    last = scores[-window:]
    if len(last) == window and all(s < rules.sentiment_below for s in last):
        return "negative_sentiment", f"the last {window} messages scored {last} (VADER compound)"
    if scores and rules.sentiment_strong is not None and scores[-1] < rules.sentiment_strong:
        return "negative_sentiment", f"a message scored {scores[-1]} (VADER compound)"
    return None


def confidence_due(rules: HandoffRules, outcomes) -> tuple[str, str] | None:
    """``("low_confidence", detail)`` when a generated reply's mean token probability is under
    ``min_confidence`` (never when that is None)."""
    if rules.min_confidence is None:
        return None
    low = [o.confidence for o in outcomes if o.confidence is not None and o.confidence < rules.min_confidence]
    if not low:
        return None
    return "low_confidence", f"mean token probability {low[0]:.4f} < {rules.min_confidence}"


def after_turn(
    db: Database, rules: HandoffRules, tenant: str, conversation_id: str, language, outcomes, fallback: bool
) -> tuple[str, str] | None:
    """Apply ``rules`` after a customer turn whose pipeline turns gave ``outcomes`` (``TurnOutcome``s)
    and in which a flow's fallback ran (``fallback``). Updates the conversation's run of failures.

    Returns:
        ``(reason, detail)`` of the hand-off due (negative_sentiment, repeated_failure, low_confidence,
        checked in that order), or None.
    """
    signals = read_signals(db, tenant, conversation_id)
    failed = [f for f in map(failure, outcomes) if f] + (["fallback"] if fallback else [])
    signals.failures = signals.failures + 1 if failed else 0
    fresh = signals.recent(rules.sentiment_window, fresh=True)
    found = sentiment_due(rules, fresh) if language in SENTIMENT_LANGUAGES else None
    if found is None and rules.max_failures is not None and signals.failures >= rules.max_failures:
        found = (
            "repeated_failure",
            f"{signals.failures} failed turns in a row (this one: {', '.join(failed)})",
        )
    found = found or confidence_due(rules, outcomes)
    _write(db, tenant, conversation_id, signals)
    return found


def handed_off(db: Database, tenant: str, conversation_id: str, last_message_id: int) -> None:
    """A person took over (by any rule or path): the run of failures ends, and scores up to
    ``last_message_id`` no longer count towards the next hand-off."""
    signals = read_signals(db, tenant, conversation_id)
    signals.failures, signals.since = 0, last_message_id
    _write(db, tenant, conversation_id, signals)
