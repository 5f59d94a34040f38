"""The support desk's pages (admins: the desk's agents), rendered on the server from the desk's public
functions (``clearlm.apps.support``): ``/support`` (the figures, the hand-off queue, the open
conversations, customers, the flows and tools configured), ``/support/customers/{id}`` (a customer's
history) and ``/support/conversations/{id}`` (the transcript with the desk's tool calls; for a handed-off
one a reply box, a "Suggest a reply" button and a hand-back button, which ``static/support-desk.js`` sends
to ``/v1/support``). Another tenant's customer or conversation is a 404 page. Every text a customer, a
model or an agent wrote is autoescaped."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import anyio
import yaml
from fastapi import APIRouter, Depends, Request

from clearlm.apps.support import Customers, SupportConversations, TurnRunner
from clearlm.apps.support.agents import active_conversations, handoff_items
from clearlm.apps.support.analytics import desk_analytics
from clearlm.apps.support.conversations import SupportConversationNotFoundError
from clearlm.apps.support.csat import csat_of
from clearlm.apps.support.customers import CustomerNotFoundError
from clearlm.apps.support.handoff import HANDOFF, open_items
from clearlm.apps.support.translation import language_name, translate_messages
from clearlm.errors import InvalidInputError
from clearlm.govern.outputs import govern_text
from clearlm.server.support import desk_config
from clearlm.store.review import ReviewQueue
from clearlm.store.sessions import SignIn
from clearlm.web.pages import needs, render

router = APIRouter(include_in_schema=False)
Admin = Annotated[SignIn, Depends(needs("admin"))]
HISTORY = 500  # a customer's latest messages shown
LISTED = 100  # conversations, hand-offs and customers listed on /support
CALLS = 200  # a conversation's customer turns read from the audit log for their tool calls


def _descriptions(folder: str | None) -> dict[str, str]:
    """The tools' ``description`` fields from the desk's tools.yaml (read once it loaded without error)."""
    path = Path(folder or "") / "tools.yaml"
    if not folder or not path.is_file():
        return {}
    try:  # the desk loaded it at start; an edit since then that breaks it costs the descriptions only
        declared = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("tools") or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        return {}
    return {
        name: str(spec.get("description", "")) for name, spec in declared.items() if isinstance(spec, dict)
    }


def _share(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.0f}%"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 60 else f"{int(value // 60)} min {value % 60:.0f} s"


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def tiles(figures) -> list[tuple[str, str, str]]:
    """The desk's figures as (label, value, note) tiles."""
    csat = "–" if figures.csat_mean is None else f"{figures.csat_mean:.1f} / 5"
    return [
        (
            "Conversations",
            str(figures.conversations),
            f"{figures.open} open · {figures.handed_off_now} with a person · {figures.closed} closed",
        ),
        (
            "Resolved without hand-off",
            _share(figures.resolution_rate),
            f"{figures.resolved_without_handoff} closed by the assistant alone",
        ),
        ("Hand-off rate", _share(figures.handoff_rate), f"{figures.handed_off} handed off to a person"),
        (
            "Median first response",
            _seconds(figures.median_first_response_s),
            "over " + _n(figures.first_responses, "conversation"),
        ),
        ("CSAT", csat, _n(figures.csat_count, "answer") + " to the survey at close"),
    ]


def _json(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def tool_calls(s, tenant: str, chat, policy) -> dict[int, list[dict]]:
    """The tools the desk called in ``chat``, by the id of the message each follows: ``{message id:
    [{tool, arguments, error, result, slot, at}]}``. Read from the audit records of its customer turns
    (``POST /v1/support/conversations/{id}/messages``, the latest ``CALLS``: each names the tools it
    called, with their arguments as the policy stores text; a call made outside the API, by the library,
    is not listed). A call follows the first message written at or after its request arrived (the
    customer's message of that turn). The result is not in the audit log: a call's result is its flow's
    ``result`` slot (``chat.flow_state``), shown for the latest call of that tool only, as the output
    policy ``policy`` lets it be returned."""
    if s.audit is None or not chat.messages:
        return {}
    records = s.audit.search(
        tenant,
        since=chat.created_at - timedelta(seconds=1),
        endpoint=f"/v1/support/conversations/{chat.id}/messages",
        newest_first=True,
        limit=CALLS,
    )
    state = chat.flow_state or {}
    flow = desk_config(s)[0].get(state.get("flow") or "")
    slots = {
        spec.tool: name for name, spec in (flow.slots() if flow else {}).items() if hasattr(spec, "tool")
    }
    found, seen = {}, set()
    for record in records:  # newest first: the latest call of a tool gets its slot's value
        at = datetime.fromisoformat(record["created_at"])
        after = next((m for m in chat.messages if m.created_at >= at), chat.messages[-1])
        calls = []
        # newest first within the turn too (a tool called twice: its slot holds the later result)
        for call in reversed((record.get("parameters") or {}).get("tool_calls") or []):
            tool = str(call.get("tool"))
            slot = slots.get(tool) if tool not in seen else None
            seen.add(tool)
            value = (state.get("slots") or {}).get(slot) if slot and not call.get("error") else None
            arguments = call.get("arguments")
            with contextlib.suppress(ValueError):  # stored as the policy stores text: maybe not JSON
                arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
            result = None if value is None else govern_text(policy, _json(value), "document")[0]
            shown = {"tool": tool, "arguments": _json(arguments), "error": call.get("error")}
            calls.insert(0, {**shown, "result": result, "slot": slot, "at": at})
        found.setdefault(after.id, [])[:0] = calls
    return found


def _missing(request: Request, signin: SignIn, what: str, ident: str):
    response = render(request, "support_missing.html", signin, what=what, ident=ident)
    response.status_code = 404
    return response


@router.get("/support")
async def desk(request: Request, signin: Admin):
    s, tenant = request.app.state.clearlm, signin.tenant

    def load() -> dict:
        flows, tools = desk_config(s)
        described = _descriptions(s.config.support_desk)
        figures = desk_analytics(s.db, tenant)
        return {
            "figures": figures,
            "tiles": tiles(figures),
            "handoffs": ReviewQueue(s.db).list(tenant, "open", HANDOFF, LISTED),
            "active": active_conversations(s.db, tenant, LISTED),
            "customers": Customers(s.db).list(tenant, LISTED),
            "flows": list(flows.values()),
            "tools": {name: described.get(name, "") for name in tools},
        }

    return render(request, "support_desk.html", signin, **await anyio.to_thread.run_sync(load))


@router.get("/support/customers/{customer_id}")
async def customer(request: Request, customer_id: str, signin: Admin):
    s, tenant = request.app.state.clearlm, signin.tenant

    def load() -> dict | None:
        try:
            who = Customers(s.db).get(tenant, customer_id)
        except CustomerNotFoundError:
            return None
        conversations = SupportConversations(s.db)
        history = conversations.history(tenant, customer_id, HISTORY)
        by_conversation: dict[str, list] = {}
        for m in history:
            by_conversation.setdefault(m.conversation_id, []).append(m)
        listed = conversations.list(tenant, customer_id)
        return {
            "customer": who,
            "conversations": listed,
            "messages": by_conversation,
            "shown": len(history),
            "csat": csat_of(s.db, tenant, [c.id for c in listed[:500]]),
        }

    found = await anyio.to_thread.run_sync(load)
    if found is None:
        return _missing(request, signin, "customer", customer_id)
    return render(request, "support_customer.html", signin, history_limit=HISTORY, **found)


@router.get("/support/conversations/{conversation_id}")
async def conversation(
    request: Request, conversation_id: str, signin: Admin, translate_to: str | None = None
):
    """The transcript; ``?translate_to=xx`` (the agent's language, ISO 639-1) shows each customer message
    in another language with its translation (``apps.support.translation``: Apertium or Bergamot where
    one has the pair, else audited model turns; cached; a bad code is shown on the page, not
    translated)."""
    s, tenant = request.app.state.clearlm, signin.tenant
    wanted, problem = (translate_to or "").strip().lower() or None, None
    if wanted is not None:
        try:
            language_name(wanted, "translate_to")
        except InvalidInputError as exc:
            wanted, problem = None, str(exc)

    def load() -> dict | None:
        try:
            chat = SupportConversations(s.db).get(tenant, conversation_id)
        except SupportConversationNotFoundError:
            return None
        translated = {}
        if wanted is not None:
            runner = TurnRunner(s.backend, s.audit, s.policy, max_tokens=s.config.default_max_tokens)
            translated = {m["id"]: m for m in translate_messages(runner, chat, wanted)}
        return {
            "chat": chat,
            "customer": Customers(s.db).get(tenant, chat.customer_id),
            "items": open_items(s.db, tenant, conversation_id),
            "handoffs": handoff_items(s.db, tenant, conversation_id),
            "tool_calls": tool_calls(s, tenant, chat, s.policy),
            "csat": csat_of(s.db, tenant, [conversation_id]).get(conversation_id),
            "translated": translated,
            "translate_to": wanted or translate_to or "",
            "translate_problem": problem,
        }

    if wanted is not None:  # model turns: a generation slot, as the API's
        await s.gate.acquire()
    try:
        found = await anyio.to_thread.run_sync(load)
    finally:
        if wanted is not None:
            await s.gate.release()
    if found is None:
        return _missing(request, signin, "conversation", conversation_id)
    return render(request, "support_conversation.html", signin, **found)
