"""Progress and cancellation of long explanations.

A caller that wants to follow (or stop) an explanation runs it inside ``reporting(callback)``; the
methods then call ``callback(stage, done, total)`` between their batches: after each batch of occluded
sequences (occlusion), each batched backward call (gradient methods: ``done`` counts gradient rows, one
per target token and integration point), each batch of perturbed inputs (faithfulness). A callback that
raises stops the work there: the exception propagates out of ``explain`` (``Cancelled`` is the one to
raise for a cancellation). Without a callback every call here does nothing.

The callback is held in a context variable, so it follows the thread that set it (run the explanation in
the thread that calls ``reporting``) and never leaks into another request's work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

Callback = Callable[[str, int, int], None]  # (stage, done, total)


class Cancelled(Exception):
    """Raised by a progress callback to stop an explanation (its caller went away, or gave up)."""


@dataclass(slots=True)
class _Meter:
    callback: Callback
    stage: str = ""
    done: int = 0
    total: int = 0


_meter: ContextVar[_Meter | None] = ContextVar("clearlm_explain_progress", default=None)


@contextmanager
def reporting(callback: Callback | None) -> Iterator[None]:
    """Report the progress of the explanations run inside the block to ``callback`` (None: to nobody)."""
    token = _meter.set(None if callback is None else _Meter(callback))
    try:
        yield
    finally:
        _meter.reset(token)


def stage(name: str) -> None:
    """Begin a stage ("attribution", "faithfulness"): its count starts again from 0 of 0."""
    m = _meter.get()
    if m is not None:
        m.stage, m.done, m.total = name, 0, 0


def grow(units: int) -> None:
    """Add ``units`` of work to the current stage's total (before doing them)."""
    m = _meter.get()
    if m is not None:
        m.total += max(0, int(units))


def advance(units: int = 1) -> None:
    """``units`` of work are done: report (the callback may raise to stop the work here)."""
    m = _meter.get()
    if m is not None:
        m.done = min(m.done + int(units), m.total)
        m.callback(m.stage, m.done, m.total)


def finish() -> None:
    """The stage is complete: report it as all done (a stage that counted nothing reports 1 of 1)."""
    m = _meter.get()
    if m is not None:
        m.total = max(m.total, 1)
        m.done = m.total
        m.callback(m.stage, m.done, m.total)
