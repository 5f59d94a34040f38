"""benchmarks/bench_support.py: the scenario files parse (known categories, at least 3 scenarios each),
and the checker run through the real desk on the tiny random model gives exact results for scenarios
whose expectations do not depend on the model's words (slots the patterns extract, the tool's result,
an explicit hand-off and the silence after it, PII redacted in storage), and reports a wrong
expectation as a failure, naming the turn and what differed."""

from __future__ import annotations

import copy
from collections import Counter

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_support")


def scenarios(bench, name="main") -> dict:
    return {s.id: s for s in bench.load_scenarios(bench.SETS[name])}


def test_every_scenario_parses_with_a_known_category_and_each_category_has_three(bench):
    main, held = scenarios(bench), scenarios(bench, "heldback")
    assert len(main) >= 40 and len(held) >= 10 and not set(main) & set(held)
    counts = Counter(s.category for s in main.values())
    assert set(counts) == set(bench.CATEGORIES) and min(counts.values()) >= 3
    assert set(Counter(s.category for s in held.values())) == set(bench.CATEGORIES)
    for s in [*main.values(), *held.values()]:
        assert s.flow in (None, "returns") and set(s.broken_tools) <= {"lookup_order"}
        assert all(t["customer"].strip() and t["expect"] for t in s.turns), s.id


def test_a_malformed_scenario_is_refused_with_its_line(bench, tmp_path):
    path = tmp_path / "bad.jsonl"
    good = '{"id": "a", "category": "pii", "customer": {"name": "A", "language": "en"}, '
    path.write_text(good + '"turns": [{"customer": "hi", "expect": {"handoff": null}}]}\n')
    assert [s.id for s in bench.load_scenarios(path)] == ["a"]
    path.write_text(good.replace("pii", "weather") + '"turns": [{"customer": "hi", "expect": {}}]}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: unknown category 'weather'"):
        bench.load_scenarios(path)
    path.write_text(good + '"turns": [{"customer": "hi", "expect": {"mood": "happy"}}]}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: a turn is"):
        bench.load_scenarios(path)


def run(bench, scenario, backend, tmp_path):
    from clearlm.govern.policy import load_policy

    policy = load_policy(bench.DESK / "policy.yaml")
    return bench.run_scenario(scenario, backend, policy, None, tmp_path, max_tokens=4)


@pytest.mark.integration  # the policy's scanners: presidio's spaCy model, the injection classifier
def test_a_scenario_passes_and_a_wrong_expectation_fails(bench, tiny_backend, tmp_path):
    main = scenarios(bench)
    outcome = run(bench, main["fc02"], tiny_backend, tmp_path)
    assert (outcome.id, outcome.passed, outcome.problems) == ("fc02", True, []), outcome.problems
    assert len(outcome.seconds) == len(main["fc02"].turns) and all(s > 0 for s in outcome.seconds)
    wrong = copy.deepcopy(main["fc02"])
    wrong.id = "fc02-wrong"
    wrong.turns[1]["expect"].update(handoff="customer_asked", slots={"reason": "damaged"}, tools=[])
    outcome = run(bench, wrong, tiny_backend, tmp_path)
    assert outcome.passed is False
    slots, *rest = outcome.problems
    assert slots.startswith(
        "turn 2: slots: expected {'reason': 'damaged'}, got {'order_number': 'A-10003', 'reason': 'wrong_item', "
    )
    assert rest == [
        "turn 2: handoff: expected customer_asked, got None",
        "turn 2: tools: expected [], got ['lookup_order']",
    ]
    leaky = copy.deepcopy(main["pi01"])  # the order number is stored (only the email is redacted)
    leaky.id = "pi01-leaky"
    leaky.turns[0]["expect"]["stored_not"] = ["A-10001"]
    leaky.turns[1]["expect"] = {"silent": True}
    outcome = run(bench, leaky, tiny_backend, tmp_path)
    assert outcome.problems[0] == "turn 1: stored_not: 'A-10001' in the history"
    assert outcome.problems[1].startswith("turn 2: silent: the assistant said ['Your return of order A-10001")
    assert len(outcome.problems) == 2
    summary = bench.summarise([outcome])
    assert summary["overall"] == [0, 1] and summary["categories"] == {"pii": [0, 1]}


# The scenarios whose expectations the desk meets whatever the model writes: flows, slots the patterns take,
# tools, hand-offs, PII, injections. Left out: replies that must be in the customer's language (la*, pi05),
# answers from the knowledge base (kn*: benchmarks/bench_support.py gives the scenarios one), and hf03
# (it needs the model's free answers to abstain). 46 of the 61 (measured: the same 46 pass).
MODEL_FREE = {
    "main": "fc01 fc02 fc03 fc04 fc05 sr01 sr02 sr03 sr04 sr05 ha01 ha02 ha03 ha04 ha05 hs01 hs02 hs03 hs04 "
    "hf01 hf02 hf04 ht01 ht02 ht03 ht04 pi01 pi02 pi03 pi04 in01 in02 in03 in04 in05",
    "heldback": "hb-fc01 hb-sr01 hb-sr02 hb-ha01 hb-ha02 hb-hs01 hb-hf01 hb-ht01 hb-ht02 hb-pi01 hb-in01",
}


@pytest.mark.integration  # the policy's scanners
def test_every_scenario_that_does_not_hang_on_the_model_s_words_passes(bench, tiny_backend, tmp_path):
    failed = {}
    for name, ids in MODEL_FREE.items():
        found = scenarios(bench, name)
        for sid in ids.split():
            outcome = run(bench, found[sid], tiny_backend, tmp_path)
            if not outcome.passed:
                failed[sid] = outcome.problems
    assert failed == {}
