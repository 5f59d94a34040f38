"""What a response carries besides the answer, computed from a finished turn and held to its policy:
the explanation (:func:`explain_turn`) and the citations (:func:`cite_turn`)."""

from __future__ import annotations

from clearlm.errors import InvalidInputError
from clearlm.govern.outputs import govern_attribution, govern_citations
from clearlm.pipeline.turn import CONTENT_FILTER, Turn


def check_method(method: str, options: dict | None = None) -> None:
    """Check an explanation method and its options before anything is generated (what
    ``clearlm.explain.explain`` would reject only after the generation).

    Raises:
        InvalidInputError: an unknown method or option, or a bad option value.
    """
    from clearlm.explain.api import METHODS, _check_options, method_options

    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    allowed = method_options(method)
    unknown = set(options or {}) - set(allowed)
    if unknown:
        raise InvalidInputError(
            f"unknown option(s) {', '.join(sorted(unknown))} for method {method!r}; "
            f"it accepts: {', '.join(allowed) or 'none'}"
        )
    _check_options(method, {**allowed, **(options or {})})


def explain_turn(explainer, turn: Turn, method: str, options: dict | None = None):
    """Explain a finished turn's first choice: the answer as returned (after the output policy) forced
    as the target of ``method`` (see ``clearlm.explain.explain``), holding the explainer's lock; the
    token strings then pass the output policy (``clearlm.govern.outputs.govern_attribution``), its
    findings noted in the record (``governance["returned"]``, for a deferred turn). Returns None when
    the answer was withheld (a refusal, or a passage-less answer): there is nothing generated to explain.

    Raises:
        InvalidInputError: an unknown method or option, or an empty answer (nothing to explain).
    """
    from clearlm.explain import explain

    choice = turn.choices[0]
    turn.record.parameters["explain"] = {"method": method, **(options or {})}
    if choice.finish_reason == CONTENT_FILTER:
        return None
    if not choice.text.strip():
        raise InvalidInputError(
            "the model generated nothing for this prompt (it ended its turn at once): give a target to explain"
        )
    with explainer.lock:
        result = explain(explainer, turn.request.prompt, choice.text, method=method, **(options or {}))
    result, notes = govern_attribution(turn.policy, result)
    turn.note(notes)
    return result


def cite_turn(explainer, turn: Turn, index: int = 0, **options):
    """The citations in choice ``index`` of a turn that answered from a knowledge base, mapped to the
    passages it was given; with an ``explainer`` (a torch backend of the served model), also how much the
    answer relied on each passage (``clearlm.knowledge.answer.cite``; ``options`` are its ablations,
    gradient, relied_threshold, seed). Everything is computed over the answer as returned (a redacted
    answer is attributed as redacted, never through its original tokens), and the question, passages and
    attribution's texts pass the output policy (``clearlm.govern.outputs.govern_citations``).

    Raises:
        InvalidInputError: the turn did not answer from a knowledge base.
    """
    from clearlm.knowledge.answer import CitedAnswer, cite, parse_citations

    g = turn.grounding
    if g is None:
        raise InvalidInputError("this turn did not answer from a knowledge base: there is nothing to cite")
    choice = turn.choices[index]
    if not g.passages:  # every passage was quarantined: the answer cites nothing and relied on nothing
        citations, unknown = parse_citations(choice.text, 0)
        return CitedAnswer(
            g.question,
            choice.text,
            turn.backend.name,
            choice.finish_reason or "stop",
            [],
            citations,
            unknown,
            [],
        )
    same_model = explainer is turn.backend
    original = choice.finish_reason != CONTENT_FILTER and not choice.changed
    cited = cite(
        explainer,
        g.question,
        list(g.passages),
        choice.text,
        token_ids=choice.token_ids if same_model and original else None,
        sources=g.sources,
        model=turn.backend.name,
        finish_reason=choice.finish_reason or "stop",
        **options,
    )
    cited, notes = govern_citations(turn.policy, cited)
    turn.note(notes)
    return cited
