"""Loading flow files: YAML to a checked :class:`~clearlm.apps.support.flows.Flow`.

Beyond the schema (pydantic), a flow is checked as a whole: step ids are unique, every ``next``,
``on_error``, ``on_declined`` and ``fallback`` names a step, every ``{template}`` and condition a slot
the flow fills, every pattern compiles and every JSON Schema is one. Each error names the file, the step and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from clearlm.apps.support.flows import TEMPLATE, Flow, FlowError, Step

CONFIRM_NAMES = frozenset({"action", "arguments"})  # what a confirmation's text may name besides slots


def parse_flow(text: str, source: str = "<flow>") -> Flow:
    """A :class:`Flow` from YAML text; ``source`` names it in errors (a path).

    Raises:
        FlowError: bad YAML, a schema error (naming the step and field), a bad reference.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FlowError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise FlowError(f"{source}: a flow file is a mapping with name and steps")
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        raise FlowError(f"{source}: {_describe(exc, data)}") from None
    _check(flow, source)
    return flow


def load_flow(path: str | Path) -> Flow:
    """The flow in the YAML file ``path`` (FlowError: unreadable or invalid, naming the file)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError(f"cannot read the flow file {path}: {exc}") from None
    return parse_flow(text, str(path))


def load_flows(folder: str | Path) -> dict[str, Flow]:
    """Every ``*.yaml``/``*.yml`` flow in ``folder``, by name (FlowError: a bad file, two of one name)."""
    flows: dict[str, Flow] = {}
    for path in sorted([*Path(folder).glob("*.yaml"), *Path(folder).glob("*.yml")]):
        flow = load_flow(path)
        if flow.name in flows:
            raise FlowError(f"{path}: a second flow named {flow.name!r}: flow names are unique")
        flows[flow.name] = flow
    return flows


def _describe(exc: ValidationError, data: dict) -> str:
    err = exc.errors()[0]
    loc = list(err["loc"])
    where = "the flow"
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        steps = data.get("steps") or []
        sid = steps[loc[1]].get("id") if loc[1] < len(steps) and isinstance(steps[loc[1]], dict) else None
        where = f"step {sid!r} (steps[{loc[1]}])" if sid else f"steps[{loc[1]}]"
        loc = loc[2:]
    loc = [x for x in loc if not (isinstance(x, str) and ("[" in x or x in ("list", "function-after")))]
    field = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}, field {field or '(the step)'}: {err['msg']}{more}"


def _check(flow: Flow, source: str) -> None:
    ids = [s.id for s in flow.steps]
    seen: set[str] = set()
    for s in flow.steps:
        if s.id in seen:
            raise FlowError(f"{source}: step {s.id!r} is defined twice: step ids are unique")
        seen.add(s.id)
    slots = set(flow.slots())

    def fail(step: Step | None, field: str, why: str) -> None:
        where = f"step {step.id!r}" if step else "the flow"
        raise FlowError(f"{source}: {where}, field {field}: {why}")

    def target(step: Step | None, field: str, value: str | None) -> None:
        if value is not None and value not in seen:
            fail(step, field, f"no step {value!r} (steps: {', '.join(ids)})")

    def template(step: Step | None, field: str, text: Any, extra: frozenset = frozenset()) -> None:
        texts = list(text.values()) if isinstance(text, dict) else [text] if isinstance(text, str) else []
        for m in (m for t in texts for m in TEMPLATE.finditer(t)):  # each language's variant
            if m.group(1).split(".")[0] not in slots | {"last_message", "tool"} | extra:
                fail(step, field, f"{{{m.group(1)}}} names no slot of the flow (slots: {sorted(slots)})")

    target(None, "fallback", flow.fallback)
    for f in ("confirm_message", "declined_message", "approval_message", "approval_wait_message"):
        template(None, f, getattr(flow, f), CONFIRM_NAMES)
    for s in flow.steps:
        target(s, "next", s.next)
        for i, route in enumerate(s.branch or []):
            target(s, f"branch[{i}].next", route.next)
            for c in route.conditions:
                if c.slot.split(".")[0] not in slots:
                    fail(s, f"branch[{i}].if.slot", f"{c.slot!r} names no slot of the flow ({sorted(slots)})")
        if s.ask:
            _check_ask(s, fail)
            for f in ("prompt", "invalid"):
                template(s, f"ask.{f}", getattr(s.ask, f))
        if s.call:
            target(s, "call.on_error", s.call.on_error)
            target(s, "call.on_declined", s.call.on_declined)
            template(s, "call.confirm_message", s.call.confirm_message, CONFIRM_NAMES)
            for k, v in s.call.args.items():
                template(s, f"call.args.{k}", v)
        template(s, "say", s.say)
        if s.answer:
            template(s, "answer.question", s.answer.question)
        for f, v in (
            ("handoff.message", s.handoff and s.handoff.message),
            ("end.message", s.end and s.end.message),
        ):
            template(s, f, v)


def _check_ask(step: Step, fail) -> None:
    ask = step.ask
    if ask.pattern is not None:
        try:
            re.compile(ask.pattern)
        except re.error as exc:
            fail(step, "ask.pattern", f"not a regular expression: {exc}")
    if ask.json_schema is not None:
        import jsonschema

        try:
            jsonschema.validators.validator_for(ask.json_schema).check_schema(ask.json_schema)
        except jsonschema.SchemaError as exc:
            fail(step, "ask.schema", f"not a valid JSON Schema: {exc.message}")
