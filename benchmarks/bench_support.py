"""Task success of the support desk on hand-written multi-turn scenarios (issue 15's evaluation).

Each scenario (``benchmarks/data/support_scenarios.jsonl``; held back: ``..._heldback.jsonl``; see
``benchmarks/data/README.md``) runs on a fresh SQLite database in a temporary folder, through the real
:class:`~clearlm.apps.support.Desk` on the governed pipeline: the sample desk (``examples/support``: the
returns flow, ``lookup_order`` over ``orders.json``, the hand-off rules of ``desk.yaml``), the policy
``examples/support/policy.yaml`` (prompt injection blocked, PII redacted, ``store_redacted``), the
knowledge base ``shop-faq`` built from ``examples/support/kb/`` (all-MiniLM-L6-v2), and slot values the
patterns miss extracted by the model (the server's default). A scenario succeeds when every expectation
of every turn holds; each is checked on the turn's :class:`~clearlm.apps.support.DeskReply` and the
stored state. Expectation keys (all optional):

- ``flow``: ``null`` (no flow state stored) or a mapping that must be a subset of the stored flow state
  (``flow``, ``step``, ``status``); ``slots``: a subset of its slots (``{}``: none filled).
- ``handoff``: the reason this turn handed off (``null``: it did not); ``status``: the conversation's.
- ``silent``: the assistant said nothing and ran no pipeline turn (handed off).
- ``says`` / ``says_not``: substrings (case-insensitive) of / absent from this turn's assistant messages;
  ``says_any``: at least one of them.
- ``stored`` / ``stored_not``: substrings of / absent from every stored message of the conversation and
  (``stored_not``) every audit record of it (prompt and output).
- ``tools``: the names of the tools this turn called, in order (``[]``: none); ``tool_error``: one failed.
- ``citations``: a reply of this turn cites knowledge-base passages; ``refused``: a reply was refused
  by the policy (``finish_reason`` ``content_filter``).
- ``language``: every assistant message of this turn of 20 characters or more is detected (lingua, the
  ``language`` scanner of :mod:`clearlm.govern.rules`) as this ISO 639-1 language (one at least).

A scenario's ``broken_tools`` replace those tools by one that raises (the order system is down).

    python benchmarks/bench_support.py                                    # both models, main set
    python benchmarks/bench_support.py --models qwen2.5-0.5b-instruct --sets main,heldback --limit 20
    python benchmarks/bench_support.py --check-only                       # parse the scenario files
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
DESK = ROOT / "examples" / "support"
SETS = {"main": DATA / "support_scenarios.jsonl", "heldback": DATA / "support_scenarios_heldback.jsonl"}
CATEGORIES = (
    "flow_completed",
    "slot_reasked",
    "handoff_asked",
    "handoff_sentiment",
    "handoff_failure",
    "handoff_tool",
    "language",
    "pii",
    "injection",
    "knowledge",
)
EXPECT_KEYS = {
    "flow", "slots", "handoff", "status", "silent", "says", "says_not", "says_any", "stored",
    "stored_not", "tools", "tool_error", "citations", "refused", "language",
}  # fmt: skip
KB_NAME = "shop-faq"
TENANT = "bench"
POLICY = DESK / "policy.yaml"
MODELS = ("qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct")


@dataclass
class Scenario:
    id: str
    category: str
    customer: dict
    turns: list[dict]
    flow: str | None = None
    broken_tools: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """A scenario's result: ``passed``, the ``problems`` found (``turn N: ...``), and each turn's seconds."""

    id: str
    category: str
    passed: bool
    problems: list[str]
    seconds: list[float]


def load_scenarios(path: Path) -> list[Scenario]:
    """The scenarios of a JSONL file. Raises ValueError naming the line of a malformed one."""
    out, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            s = Scenario(**raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path.name}:{n}: {exc}") from None
        if s.category not in CATEGORIES:
            raise ValueError(f"{path.name}:{n}: unknown category {s.category!r}")
        if s.id in seen or not s.turns or set(s.customer) != {"name", "language"}:
            raise ValueError(
                f"{path.name}:{n}: a duplicate id, no turns, or a customer not {{name, language}}"
            )
        for t in s.turns:
            if set(t) != {"customer", "expect"} or set(t["expect"]) - EXPECT_KEYS:
                raise ValueError(
                    f"{path.name}:{n}: a turn is {{customer, expect}} with keys of {EXPECT_KEYS}"
                )
        seen.add(s.id)
        out.append(s)
    return out


def first_of_each(scenarios: Sequence[Scenario], n: int) -> list[Scenario]:
    """The first ``n`` scenarios of each category, in the file's order."""
    seen: dict[str, int] = defaultdict(int)
    out = []
    for s in scenarios:
        seen[s.category] += 1
        if seen[s.category] <= n:
            out.append(s)
    return out


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code lingua detects for ``text`` (as the policy's ``language`` scanner does); None
    for a text under 20 characters (not judged)."""
    from clearlm.govern.base import ScanContext
    from clearlm.govern.rules import LanguageScanner

    if len(text.strip()) < 20:
        return None
    found = LanguageScanner(allowed=()).findings(text, ScanContext(stage="output", role="assistant"))
    return found[0].type.removeprefix("language_") if found else None


def check_turn(expect: dict, reply, desk, conversation_id: str) -> list[str]:
    """What of ``expect`` does not hold for the turn's DeskReply ``reply`` and the stored state."""
    from clearlm.store import AuditLog

    problems = []
    stored = desk.conversations.get(TENANT, conversation_id)
    said = [m.text for m in reply.messages if m.role == "assistant"]
    text = "\n".join(said).lower()
    if "flow" in expect:
        want, state = expect["flow"], stored.flow_state
        if want is None and state is not None:
            problems.append(f"flow: expected none, got {state.get('flow')}/{state.get('step')}")
        elif want is not None and (state is None or any(state.get(k) != v for k, v in want.items())):
            got = None if state is None else {k: state.get(k) for k in want}
            problems.append(f"flow: expected {want}, got {got}")
    if "slots" in expect:
        slots = (stored.flow_state or {}).get("slots", {})
        want = expect["slots"]
        if (want == {} and slots) or any(slots.get(k) != v for k, v in want.items()):
            problems.append(f"slots: expected {want}, got {slots}")
    if "handoff" in expect:
        got = reply.handoff["reason"] if reply.handoff else None
        if got != expect["handoff"]:
            problems.append(f"handoff: expected {expect['handoff']}, got {got}")
    if "status" in expect and stored.status != expect["status"]:
        problems.append(f"status: expected {expect['status']}, got {stored.status}")
    if expect.get("silent") and (said or reply.request_ids):
        problems.append(f"silent: the assistant said {said} in {len(reply.request_ids)} pipeline turns")
    problems += [f"says: {s!r} not in {said}" for s in expect.get("says", []) if s.lower() not in text]
    problems += [f"says_not: {s!r} in {said}" for s in expect.get("says_not", []) if s.lower() in text]
    if "says_any" in expect and not any(s.lower() in text for s in expect["says_any"]):
        problems.append(f"says_any: none of {expect['says_any']} in {said}")
    history = "\n".join(m.text for m in stored.messages)
    problems += [f"stored: {s!r} not in the history" for s in expect.get("stored", []) if s not in history]
    if expect.get("stored_not"):
        records = [r for r in AuditLog(desk.db).records() if r.request_id.startswith(conversation_id + "-")]
        audited = json.dumps([[r.prompt, r.output] for r in records], ensure_ascii=False)
        for s in expect["stored_not"]:
            if s in history or s in audited:
                problems.append(f"stored_not: {s!r} in the {'history' if s in history else 'audit log'}")
    if "tools" in expect and [c["tool"] for c in reply.tool_calls] != expect["tools"]:
        problems.append(f"tools: expected {expect['tools']}, got {[c['tool'] for c in reply.tool_calls]}")
    if "tool_error" in expect and any(c["error"] for c in reply.tool_calls) != expect["tool_error"]:
        problems.append(f"tool_error: expected {expect['tool_error']}, got {reply.tool_calls}")
    if "citations" in expect and any(o.citations for o in reply.outcomes) != expect["citations"]:
        problems.append(f"citations: expected {expect['citations']}")
    if "refused" in expect:
        refused = any(o.finish_reason == "content_filter" for o in reply.outcomes)
        if refused != expect["refused"]:
            problems.append(f"refused: expected {expect['refused']}, got {refused}")
    if "language" in expect:
        found = [lang for lang in map(detect_language, said) if lang is not None]
        if not found or any(lang != expect["language"] for lang in found):
            problems.append(
                f"language: expected {expect['language']}, detected {found or 'nothing to judge'}"
            )
    return problems


def _broken(name: str) -> Callable:
    def down(**arguments):
        raise ConnectionError(f"{name}: the order system does not answer")

    return down


def run_scenario(scenario: Scenario, backend, policy, open_kb, folder: Path, extractor=None, max_tokens=64):
    """Run ``scenario`` on a fresh database under ``folder`` and check it. Returns an :class:`Outcome`."""
    from clearlm.apps.support import Customers, Desk, TurnRunner, load_desk, load_rules
    from clearlm.store import AuditLog, Database

    db = Database(f"sqlite:///{folder / (scenario.id + '.db')}")
    try:
        flows, tools = load_desk(DESK)
        tools.update({name: _broken(name) for name in scenario.broken_tools})
        runner = TurnRunner(backend, AuditLog(db), policy, max_tokens=max_tokens)
        desk = Desk(db, runner, flows, tools, open_kb=open_kb, extractor=extractor, rules=load_rules(DESK))
        customer = Customers(db).create(TENANT, scenario.customer["name"], scenario.customer["language"])
        cid = desk.open_conversation(TENANT, customer.id, flow=scenario.flow).conversation.id
        problems, seconds = [], []
        for n, turn in enumerate(scenario.turns, 1):
            start = time.perf_counter()
            try:
                reply = desk.customer_message(TENANT, cid, turn["customer"])
            except Exception as exc:  # a crash of the desk is the scenario's failure, not the run's
                problems.append(f"turn {n}: raised {type(exc).__name__}: {str(exc)[:200]}")
                break
            seconds.append(time.perf_counter() - start)
            problems += [f"turn {n}: {p}" for p in check_turn(turn["expect"], reply, desk, cid)]
    finally:
        db.close()
    return Outcome(scenario.id, scenario.category, not problems, problems, seconds)


def build_kb(root: Path):
    """The knowledge base ``shop-faq`` from ``examples/support/kb`` under ``root``; returns ``open_kb``."""
    from clearlm.knowledge import KnowledgeBase
    from clearlm.knowledge.errors import KnowledgeBaseNotFoundError

    kb = KnowledgeBase.create(KB_NAME, root=root)
    with kb:
        kb.add([str(p) for p in sorted((DESK / "kb").glob("*.md"))])

    def open_kb(tenant: str, name: str):
        if name != KB_NAME:
            raise KnowledgeBaseNotFoundError(f"no knowledge base {name!r}")
        return KnowledgeBase.open(name, root=root)

    return open_kb


def summarise(outcomes: Sequence[Outcome]) -> dict:
    """Task success per category and overall, and seconds per turn (p50, p90)."""
    by = defaultdict(list)
    for o in outcomes:
        by[o.category].append(o.passed)
    turns = sorted(s for o in outcomes for s in o.seconds)
    return {
        "categories": {c: [sum(by[c]), len(by[c])] for c in CATEGORIES if by[c]},
        "overall": [sum(o.passed for o in outcomes), len(outcomes)],
        "turn_s_p50": statistics.median(turns) if turns else None,
        "turn_s_p90": turns[int(0.9 * (len(turns) - 1))] if turns else None,
        "failed": {o.id: o.problems for o in outcomes if not o.passed},
    }


def run_model(
    model: str, scenarios: Sequence[Scenario], backend_name: str, max_tokens: int, policy_path: Path = POLICY
) -> dict:
    from clearlm.govern.policy import load_policy
    from clearlm.models import load_backend

    backend = load_backend(model, backend_name)
    policy = load_policy(policy_path)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="bench-support-") as tmp:
        need_kb = any(s.category == "knowledge" or s.flow for s in scenarios)
        open_kb = build_kb(Path(tmp) / "knowledge") if need_kb else None
        for s in scenarios:
            outcomes.append(run_scenario(s, backend, policy, open_kb, Path(tmp), max_tokens=max_tokens))
            mark = "ok" if outcomes[-1].passed else "FAIL " + "; ".join(outcomes[-1].problems)
            print(f"  {model} {s.id}: {mark}", file=sys.stderr, flush=True)
    return {"model": model, **summarise(outcomes)}


def print_table(results: Sequence[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="support desk: task success by scenario category")
    table.add_column("category")
    for r in results:
        table.add_column(r["model"], justify="right")
    rows = [c for c in CATEGORIES if any(c in r["categories"] for r in results)]

    def cell(pair) -> str:
        return f"{pair[0]}/{pair[1]} ({pair[0] / pair[1]:.0%})" if pair and pair[1] else "-"

    for c in rows:
        table.add_row(c, *[cell(r["categories"].get(c)) for r in results])
    table.add_row("overall", *[cell(r["overall"]) for r in results])
    table.add_row("s/turn p50", *[f"{r['turn_s_p50']:.2f}" for r in results])
    Console(width=160).print(table)
    for r in results:
        for sid, problems in r["failed"].items():
            print(f"{r['model']} {sid}: {'; '.join(problems)}")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", default=",".join(MODELS), help="chat models (catalog names), comma-separated"
    )
    parser.add_argument(
        "--backend", default="auto", help="auto (llama.cpp when installed), llamacpp or torch"
    )
    parser.add_argument("--sets", default="main", help="main, heldback, or main,heldback")
    parser.add_argument("--limit", type=int, help="the first N scenarios of each category of each set only")
    parser.add_argument("--max-tokens", type=int, default=64, help="the most tokens of a generated reply")
    parser.add_argument(
        "--policy", type=Path, default=POLICY, help="the policy file (default: the sample desk's)"
    )
    parser.add_argument("--categories", help="only these categories, comma-separated (default: all)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--check-only", action="store_true", help="parse the scenario files and stop")
    args = parser.parse_args(argv)
    scenarios = []
    for name in args.sets.split(","):
        loaded = load_scenarios(SETS[name.strip()])
        scenarios += first_of_each(loaded, args.limit) if args.limit else loaded
    if args.categories:
        wanted = {c.strip() for c in args.categories.split(",")}
        if wanted - set(CATEGORIES):
            parser.error(f"unknown categories {sorted(wanted - set(CATEGORIES))}: choose from {CATEGORIES}")
        scenarios = [s for s in scenarios if s.category in wanted]
    if args.check_only:
        print(f"{len(scenarios)} scenarios parse")
        return []
    models = [m.strip() for m in args.models.split(",")]
    results = [run_model(m, scenarios, args.backend, args.max_tokens, args.policy) for m in models]
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return results


if __name__ == "__main__":
    main()
