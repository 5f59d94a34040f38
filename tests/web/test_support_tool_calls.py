"""The desk page's tool calls (``web.support.tool_calls``), read from the audit records of a conversation's
customer turns: each call follows the customer's message of its turn; the result shown is the flow's
``result`` slot, for the latest call of that tool only (a failed call shows its error, never a result);
another conversation's turns and another tenant's stay out; the output policy redacts what is shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from clearlm.apps.support import Customers, SupportConversations
from clearlm.govern.policy import parse_policy
from clearlm.store.audit import AuditRecord
from clearlm.web.support import tool_calls

DESK = Path(__file__).parents[2] / "examples" / "support"
ORDER = {"found": True, "item": "desk lamp", "email": "ben@example.com", "days_since_delivery": 45}


def test_tool_calls_follow_their_turn_s_message_and_only_the_latest_shows_the_slot(tmp_path, tiny_backend):
    from clearlm.server import ServerConfig, ServerState

    s = ServerState(
        ServerConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", model="tiny", support_desk=str(DESK)),
        backend=tiny_backend,
    )
    try:
        conversations = SupportConversations(s.db)
        ana = Customers(s.db).create("acme", "Ana", "en")
        chat = conversations.open("acme", ana.id)
        other = conversations.open("acme", ana.id)

        def turn(cid: str, calls: list[dict], tenant: str = "acme") -> None:
            at = datetime.now(UTC)
            record = AuditRecord(
                f"req-{len(s.audit.records()):04d}", at, f"/v1/support/conversations/{cid}/messages"
            )
            record.parameters, record.tenant = {"conversation_id": cid, "tool_calls": calls}, tenant
            s.audit.write(record)

        failed = {"tool": "lookup_order", "arguments": '{"order_number": "A-10002"}', "error": "timed out"}
        done = {"tool": "lookup_order", "arguments": '{"order_number": "A-10002"}', "error": None}
        turn(chat.id, [failed, done])  # a turn that retried the tool
        first = conversations.append_message("acme", chat.id, "customer", "I am returning order A-10002")
        conversations.append_message("acme", chat.id, "assistant", "Why are you returning it?")
        turn(chat.id, [done])
        turn(other.id, [{"tool": "other_tool", "arguments": "{}", "error": None}])
        turn(chat.id, [{"tool": "zeta_tool", "arguments": "{}", "error": None}], tenant="zeta")
        second = conversations.append_message("acme", chat.id, "customer", "changed mind")
        state = {"flow": "returns", "step": None, "status": "handed_off", "slots": {"order": ORDER}}
        conversations.update("acme", chat.id, flow_state=state)
        chat = conversations.get("acme", chat.id)

        found = tool_calls(s, "acme", chat, None)
        assert sorted(found) == [first.id, second.id]
        shown = [(c["tool"], c["arguments"], c["error"], c["slot"]) for c in found[first.id]]
        assert shown == [
            ("lookup_order", '{"order_number": "A-10002"}', "timed out", None),
            ("lookup_order", '{"order_number": "A-10002"}', None, None),  # an earlier call: not its slot now
        ]
        [latest] = found[second.id]
        assert (latest["slot"], latest["result"]) == ("order", '{"found": true, "item": "desk lamp", '
                '"email": "ben@example.com", "days_since_delivery": 45}')  # fmt: skip
        assert all(c["result"] is None for c in found[first.id])

        policy = parse_policy(
            "name: p\noutput:\n  - {scanner: regex, patterns: {mail: '\\S+@\\S+'}, action: redact}\n"
        )
        redacted = tool_calls(s, "acme", chat, policy)[second.id][0]["result"]
        assert "ben@example.com" not in redacted and "desk lamp" in redacted
    finally:
        s.close()
