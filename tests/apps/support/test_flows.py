"""Flow files: the sample returns flow loads; a bad file is a FlowError naming the file, the step and
the field, for YAML syntax, the schema, and references to unknown steps or slots."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearlm.apps.support import FlowError, load_flow, load_flows, parse_flow
from clearlm.errors import InvalidInputError

RETURNS = Path(__file__).parents[3] / "examples" / "support" / "flows" / "returns.yaml"


def test_the_sample_returns_flow_loads():
    flow = load_flow(RETURNS)
    assert flow.name == "returns" and flow.knowledge_base == "shop-faq" and flow.max_invalid == 3
    assert [(s.id, s.kind) for s in flow.steps] == [
        ("ask_order", "ask"),
        ("ask_reason", "ask"),
        ("lookup", "call"),
        ("check_found", "branch"),
        ("check_window", "branch"),
        ("accept", "say"),
        ("done", "end"),
        ("not_found", "handoff"),
        ("late", "handoff"),
    ]
    assert flow.step("ask_reason").ask.enum == ["damaged", "wrong_item", "changed_mind"]
    route = flow.step("check_window").branch[0]
    assert (route.conditions[0].slot, route.conditions[0].le, route.next) == (
        "order.days_since_delivery",
        30,
        "accept",
    )
    assert sorted(flow.slots()) == ["order", "order_number", "reason"]
    assert list(load_flows(RETURNS.parent)) == ["change_address", "refund", "returns"]


BASE = """
name: f
steps:
  - id: first
    ask: {slot: order_number, prompt: "Number?", pattern: 'A-\\d{5}'}
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "  - id: check\n    branch:\n      - {if: {slot: order_number, exists: true}, next: nowhere}\n",
            r"step 'check', field branch\[0\]\.next: no step 'nowhere' \(steps: first, check\)",
        ),
        ("  - {id: s, say: hi, next: gone}\n", "step 's', field next: no step 'gone'"),
        ("  - {id: s, say: hi, end: {}}\n", r"step 's' \(steps\[1\]\), field \(the step\).*exactly one of"),
        ("  - {id: s}\n", r"step 's' \(steps\[1\]\).*got none"),
        ("  - {id: s, sey: hi}\n", r"step 's' \(steps\[1\]\), field sey: Extra inputs"),
        (
            "  - {id: s, ask: {slot: x, prompt: p, pattern: '(['}}\n",
            "step 's', field ask.pattern: not a regular",
        ),
        (
            "  - {id: s, ask: {slot: x, prompt: p, schema: {type: 12}}}\n",
            "step 's', field ask.schema: not a valid JSON Schema",
        ),
        ("  - {id: s, say: 'Hi {nme}'}\n", r"step 's', field say: \{nme\} names no slot"),
        ("  - {id: first, say: again}\n", "step 'first' is defined twice"),
        (
            "  - id: b\n    branch:\n      - {if: {slot: order_number, equals: 1, in: [1]}, next: first}\n",
            r"step 'b' \(steps\[1\]\), field branch\[0\]\.if: .*exactly one of equals",
        ),
        (
            "  - id: b\n    branch:\n      - {if: {slot: ordr, exists: true}, next: first}\n",
            r"step 'b', field branch\[0\]\.if\.slot: 'ordr' names no slot",
        ),
        (
            "  - {id: c, call: {tool: t, result: r, on_error: nope}}\n",
            "step 'c', field call.on_error: no step 'nope'",
        ),
    ],
)
def test_a_bad_flow_is_refused_naming_the_step_and_field(extra, message):
    with pytest.raises(FlowError, match=message) as err:
        parse_flow(BASE + extra, "flows/f.yaml")
    assert str(err.value).startswith("flows/f.yaml: ")
    assert isinstance(err.value, InvalidInputError) and err.value.status_code == 400


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: f\nsteps: [\n", "not valid YAML"),
        ("- a\n- b\n", "a mapping with name and steps"),
        ("name: f\nsteps: []\n", r"the flow, field steps: List should have at least 1 item"),
        (BASE + "fallback: later\n", "the flow, field fallback: no step 'later'"),
        ("name: 'bad name'\nsteps: [{id: s, say: hi}]\n", "the flow, field name: String should match"),
    ],
)
def test_a_bad_flow_file_as_a_whole_is_refused(text, message):
    with pytest.raises(FlowError, match=message):
        parse_flow(text, "f.yaml")


def test_missing_files_and_duplicate_names_are_refused(tmp_path):
    with pytest.raises(FlowError, match="cannot read the flow file"):
        load_flow(tmp_path / "none.yaml")
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yml").write_text(BASE)
    with pytest.raises(FlowError, match=r"b\.yml: a second flow named 'f'"):
        load_flows(tmp_path)
