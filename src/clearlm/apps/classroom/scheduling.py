"""Spaced review with FSRS (the ``fsrs`` package, FSRS-6: Ye, Su & Cao, "A Stochastic Shortest Path
Algorithm for Optimizing Spaced Repetition Scheduling", KDD 2022; open-spaced-repetition/py-fsrs).

Each item a learner has attempted has a card; an attempt reviews it with a rating taken from the result:

    wrong                 -> Again  (the learning steps: back in minutes)
    right after a hint    -> Hard
    right without a hint  -> Good

(FSRS's Easy is not used: a right answer alone does not say it was effortless.) Fuzzing is off, so a
schedule is reproducible; the desired retention is FSRS's default 0.9.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fsrs import Card, Rating, Scheduler


def make_scheduler(desired_retention: float = 0.9) -> Scheduler:
    """An FSRS scheduler with the default FSRS-6 weights, learning steps 1 and 10 minutes, no fuzzing."""
    return Scheduler(desired_retention=desired_retention, enable_fuzzing=False)


def rating_for(correct: bool, hints_used: int) -> Rating:
    """The FSRS rating of an attempt (see the module docstring)."""
    if not correct:
        return Rating.Again
    return Rating.Hard if hints_used > 0 else Rating.Good


def new_card(card_id: int = 0) -> Card:
    """A card never reviewed (``card_id`` given, so no clock is read to make one)."""
    return Card(card_id=card_id)


def review(scheduler: Scheduler, card: Card | None, correct: bool, hints_used: int, when: datetime) -> Card:
    """``card`` (None: a new one) reviewed at ``when`` (UTC; a naive datetime is taken as UTC) with the
    attempt's rating. Returns the updated card; its ``due`` is the next review."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    card = card if card is not None else new_card()
    updated, _log = scheduler.review_card(card, rating_for(correct, hints_used), review_datetime=when)
    return updated


def card_to_json(card: Card) -> dict:
    """The card as JSON (``fsrs.Card.to_dict``)."""
    return dict(card.to_dict())


def card_from_json(data: dict) -> Card:
    """The card stored by :func:`card_to_json`."""
    return Card.from_dict(data)
