"""Knowledge tracing against pyBKT: on logged attempts drawn from known BKT parameters, pyBKT's fit
recovers them, and our online update gives pyBKT's own one-step predictions (P(mastery) before each
attempt and P(correct)) with pyBKT's fitted parameters, row by row, to 1e-9; a multi-skill attempt updates
every skill (OATutor #54/#125); one update by hand. No model is loaded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clearlm.apps.classroom.tracing import (
    BktParams,
    _pybkt_model,
    fit_parameters,
    forward,
    params_from_pybkt,
    update,
    update_skills,
)
from clearlm.errors import InvalidInputError

TRUE = {
    "frac-add": BktParams(prior=0.2, learn=0.15, guess=0.2, slip=0.1),
    "units": BktParams(prior=0.4, learn=0.3, guess=0.15, slip=0.05),
}
# (item skills) drawn in turn; "both" is a multi-skill item logged as one row per skill
ITEMS = [("frac-add",), ("units",), ("frac-add", "units")]


def logged_attempts(n_learners: int, n_attempts: int = 10, seed: int = 7, items=ITEMS) -> list[tuple]:
    """(learner, skill, correct) rows in time order, simulated from TRUE; a multi-skill attempt is right
    only when both skills produce a right answer, and is logged once per skill."""
    rng = np.random.default_rng(seed)
    rows = []
    for learner in range(n_learners):
        known = {s: rng.random() < p.prior for s, p in TRUE.items()}
        for _ in range(n_attempts):
            skills = items[rng.integers(len(items))]
            right = all(
                (rng.random() > TRUE[s].slip) if known[s] else (rng.random() < TRUE[s].guess) for s in skills
            )
            rows.extend((f"l{learner}", s, bool(right)) for s in skills)
            for s in skills:
                known[s] = known[s] or rng.random() < TRUE[s].learn
    return rows


def test_one_update_by_hand():
    p = BktParams(prior=0.3, learn=0.2, guess=0.25, slip=0.1)
    # right: 0.3*0.9 / (0.3*0.9 + 0.7*0.25) = 0.27/0.445; then + (1 - that) * 0.2
    right = 0.27 / 0.445
    assert update(0.3, True, p) == pytest.approx(right + (1 - right) * 0.2, abs=1e-12)
    wrong = 0.03 / (0.03 + 0.7 * 0.75)
    assert update(0.3, False, p) == pytest.approx(wrong + (1 - wrong) * 0.2, abs=1e-12)
    assert update(0.3, False, p) < 0.3 < update(0.3, True, p)


def test_a_multi_skill_attempt_updates_every_skill():
    params = {s: p for s, p in TRUE.items()}
    after = update_skills({"frac-add": 0.5}, ("frac-add", "units"), True, params)
    assert after["frac-add"] == pytest.approx(update(0.5, True, TRUE["frac-add"]))
    assert after["units"] == pytest.approx(update(0.4, True, TRUE["units"]))  # from its prior
    assert after["frac-add"] > 0.5 and after["units"] > 0.4
    wrong = update_skills(after, ("frac-add", "units"), False, params)
    assert wrong["frac-add"] < after["frac-add"] and wrong["units"] < after["units"]


@pytest.mark.filterwarnings(r"ignore:::pyBKT\.")  # its pandas idioms that pandas 3 deprecates
def test_our_forward_pass_gives_pybkts_predictions_with_its_fitted_parameters():
    rows = logged_attempts(n_learners=60)
    data = pd.DataFrame(
        {
            "order_id": range(len(rows)),
            "user_id": [r[0] for r in rows],
            "skill_name": [r[1] for r in rows],
            "correct": [int(r[2]) for r in rows],
        }
    )
    model = _pybkt_model()(seed=3, num_fits=1, parallel=False)
    model.fit(data=data)
    predicted = model.predict(data=data).sort_values("order_id")
    fitted = {s: params_from_pybkt(c) for s, c in model.coef_.items()}
    assert set(fitted) == set(TRUE)

    ours_state = np.full(len(rows), np.nan)
    ours_correct = np.full(len(rows), np.nan)
    for (_learner, skill), group in data.groupby(["user_id", "skill_name"], sort=False):
        group = group.sort_values("order_id")
        states, corrects = forward(group["correct"].astype(bool), fitted[skill])
        ours_state[group["order_id"].to_numpy()] = states
        ours_correct[group["order_id"].to_numpy()] = corrects
    np.testing.assert_allclose(ours_state, predicted["state_predictions"].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(ours_correct, predicted["correct_predictions"].to_numpy(), atol=1e-9)
    assert np.ptp(ours_state) > 0.5  # the data moved mastery a lot: the comparison is not trivial


def test_pybkt_recovers_the_parameters_single_skill_attempts_were_drawn_from():
    rows = logged_attempts(n_learners=120, items=ITEMS[:2])
    fitted = fit_parameters(rows, seed=1, num_fits=1)
    assert set(fitted) == {"frac-add", "units"}
    for skill, true in TRUE.items():
        got = fitted[skill]
        assert got.forget == 0.0
        for name in ("prior", "learn", "guess", "slip"):
            assert getattr(got, name) == pytest.approx(getattr(true, name), abs=0.15), (skill, name)


def test_fitting_nothing_is_an_error():
    with pytest.raises(InvalidInputError, match="no logged attempts"):
        fit_parameters([])
