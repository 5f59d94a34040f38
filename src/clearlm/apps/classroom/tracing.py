"""Bayesian Knowledge Tracing (Corbett & Anderson, "Knowledge tracing: modeling the acquisition of
procedural knowledge", UMUAI 4, 1995): P(mastery) of a skill, updated after every attempt.

Per skill four probabilities (:class:`BktParams`): ``prior`` P(L0), ``learn`` P(T) (an unmastered skill
becomes mastered after an attempt), ``guess`` P(G) (right without mastery), ``slip`` P(S) (wrong with
mastery); ``forget`` is 0 as in the classic model and pyBKT's default. One attempt with P(L) = p:

    P(correct)       = p (1 - slip) + (1 - p) guess
    posterior        = p (1 - slip) / P(correct)             if right
                       p slip / (p slip + (1 - p)(1 - guess)) if wrong
    P(L) afterwards  = posterior (1 - forget) + (1 - posterior) learn

An item that exercises several skills updates every one of them with the same outcome, as pyBKT does with
one row per skill of a multi-skill attempt (OATutor's bug CAHLR/OATutor#54, #125: only its first skill was
updated). :func:`forward` is pyBKT's one-step prediction (``Model.predict``'s ``state_predictions`` and
``correct_predictions``); ``tests/apps/classroom/test_tracing.py`` checks the two agree to 1e-9.
:func:`fit_parameters` fits the parameters from logged attempts with pyBKT's EM (Badrinath, Wang & Pardos,
"pyBKT", EDM 2021).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clearlm.errors import InvalidInputError


class BktParams(BaseModel):
    """A skill's BKT parameters, probabilities. ``guess`` and ``slip`` stay below 0.5: above, a model is
    degenerate (a right answer would lower P(mastery); Baker, Corbett & Aleven, ITS 2008). The defaults are
    starting values for a skill with no logged attempts yet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prior: float = Field(0.1, ge=0, le=1)
    learn: float = Field(0.15, ge=0, le=1)
    guess: float = Field(0.2, ge=0, lt=0.5)
    slip: float = Field(0.1, ge=0, lt=0.5)
    forget: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _identifiable(self) -> BktParams:
        if self.guess + self.slip >= 1:
            raise ValueError("guess + slip must be below 1, or a right answer says nothing of mastery")
        return self


def p_correct(p_mastery: float, params: BktParams) -> float:
    """P(the next answer is right) for P(mastery) = ``p_mastery``."""
    return p_mastery * (1 - params.slip) + (1 - p_mastery) * params.guess


def update(p_mastery: float, correct: bool, params: BktParams) -> float:
    """P(mastery) after one attempt (posterior given the outcome, then the learning transition)."""
    if correct:
        evidence = p_mastery * (1 - params.slip)
        posterior = evidence / (evidence + (1 - p_mastery) * params.guess)
    else:
        evidence = p_mastery * params.slip
        posterior = evidence / (evidence + (1 - p_mastery) * (1 - params.guess))
    return posterior * (1 - params.forget) + (1 - posterior) * params.learn


def update_skills(
    mastery: dict[str, float], skills: Sequence[str], correct: bool, params: dict[str, BktParams]
) -> dict[str, float]:
    """``mastery`` with EVERY skill in ``skills`` updated by one attempt (a skill not yet in ``mastery``
    starts at its prior). Returns a new dict; ``params`` maps each skill to its parameters."""
    out = dict(mastery)
    for skill in skills:
        p = out.get(skill, params[skill].prior)
        out[skill] = update(p, correct, params[skill])
    return out


def forward(outcomes: Iterable[bool], params: BktParams) -> tuple[list[float], list[float]]:
    """One learner's attempts at one skill, in order -> (P(mastery) before each attempt, P(correct) of
    each attempt): pyBKT's ``state_predictions`` and ``correct_predictions``, both ``float[n_attempts]``."""
    states, corrects = [], []
    p = params.prior
    for outcome in outcomes:
        states.append(p)
        corrects.append(p_correct(p, params))
        p = update(p, bool(outcome), params)
    return states, corrects


def fit_parameters(
    rows: Sequence[tuple[str, str, bool]], *, seed: int = 0, num_fits: int = 5
) -> dict[str, BktParams]:
    """BKT parameters per skill fitted by pyBKT's EM from logged attempts.

    Args:
        rows: ``(learner, skill, correct)`` in time order; an attempt at a multi-skill item is one row per
            skill (the ASSISTments convention pyBKT follows).
        seed, num_fits: pyBKT's random restarts (the best likelihood wins), seeded for repeatability.

    Returns: ``{skill: BktParams}`` for every skill in ``rows`` (``forget`` 0).

    Raises:
        InvalidInputError: no rows.
    """
    if not rows:
        raise InvalidInputError("no logged attempts to fit BKT parameters from; practise some items first")
    import pandas as pd

    model_cls = _pybkt_model()
    data = pd.DataFrame(
        {
            "order_id": range(len(rows)),
            "user_id": [str(r[0]) for r in rows],
            "skill_name": [str(r[1]) for r in rows],
            "correct": [int(bool(r[2])) for r in rows],
        }
    )
    model = model_cls(seed=seed, num_fits=num_fits, parallel=False)
    with warnings.catch_warnings():  # pyBKT 1.4.3's pandas idioms that pandas 3 deprecates, on every fit
        warnings.filterwarnings("ignore", module=r"pyBKT\.")
        model.fit(data=data)
    return {skill: params_from_pybkt(coef) for skill, coef in model.coef_.items()}


def params_from_pybkt(coef: dict) -> BktParams:
    """:class:`BktParams` from one skill of pyBKT's ``Model.coef_`` (arrays of one value, no template
    variants); guess and slip are clipped just below 0.5 should EM land on a degenerate fit."""

    def one(value) -> float:
        return float(getattr(value, "ravel", lambda: [value])()[0])

    return BktParams(
        prior=one(coef["prior"]),
        learn=one(coef["learns"]),
        guess=min(one(coef["guesses"]), 0.4999),
        slip=min(one(coef["slips"]), 0.4999),
        forget=one(coef.get("forgets", 0.0)),
    )


def _pybkt_model():
    """pyBKT's ``Model``, imported around two incompatibilities of pyBKT 1.4.3 with current libraries:
    its metrics module probes scikit-learn's private ``_log_loss`` with lists (scikit-learn >= 1.8 raises
    AttributeError, which it does not catch), and its EM stores a (1, 1) log-likelihood array into one
    element (NumPy >= 2.4 refuses). Both shims are undone or confined to pyBKT."""
    with _sklearn_probe_tolerated():
        from pyBKT.fit import EM_fit
        from pyBKT.models import Model
    if not getattr(EM_fit.run, "_clearlm_scalar", False):
        original = EM_fit.run

        def run(*args, **kwargs):
            result = original(*args, **kwargs)
            result["total_loglike"] = float(result["total_loglike"].ravel()[0])
            return result

        run._clearlm_scalar = True
        EM_fit.run = run
    return Model


@contextmanager
def _sklearn_probe_tolerated():
    import sklearn.metrics._classification as classification

    original = getattr(classification, "_log_loss", None)
    if original is None:
        yield
        return

    def probed(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        except AttributeError as exc:  # pyBKT skips a metric that raises TypeError
            raise TypeError(str(exc)) from exc

    classification._log_loss = probed
    try:
        yield
    finally:
        classification._log_loss = original
