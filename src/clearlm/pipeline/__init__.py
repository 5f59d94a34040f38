"""The one turn every generation goes through, whatever the entry point (CLI, HTTP API, applications):

    request -> input checks and policy -> context (retrieved passages, checked too) -> generate (backend)
            -> output policy -> audit record -> response (and what it carries: explanation, citations)

so that no new entry point can skip the checks or the audit log. ``start_turn`` checks a request and
returns a :class:`Turn`; iterating the turn streams the generation; closing it (or reaching its end)
writes its one audit record. A request refused by the checks, or failing with any exception, is
recorded too. The input policy scans every message whatever its role, a forced target, and every
retrieved passage (indirect prompt injection); the output policy covers the answer and, through
:func:`explain_turn` and :func:`cite_turn`, everything else returned with it (``clearlm.govern.outputs``).
Text that enters without being generated (a speech transcript, text read from an image) passes
:func:`screen_text`: the input policy and one audit record.
"""

from clearlm.pipeline.after import check_method, cite_turn, explain_turn
from clearlm.pipeline.grounding import NO_PASSAGES, Grounding, Retrieval, screen_passages
from clearlm.pipeline.screen import Screened, screen_text
from clearlm.pipeline.turn import (
    CLIENT_CLOSED,
    CONTENT_FILTER,
    FORCED,
    MAX_CHOICES,
    Choice,
    Turn,
    TurnRequest,
    start_turn,
)

__all__ = [
    "CLIENT_CLOSED",
    "CONTENT_FILTER",
    "FORCED",
    "MAX_CHOICES",
    "NO_PASSAGES",
    "Choice",
    "Grounding",
    "Retrieval",
    "Screened",
    "Turn",
    "TurnRequest",
    "check_method",
    "cite_turn",
    "explain_turn",
    "screen_passages",
    "screen_text",
    "start_turn",
]
