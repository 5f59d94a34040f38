"""The review queue (store/review.py) against a SQLite file and a real PostgreSQL server: adding, listing in
the queue's order, tenants, deciding once, the kinds' handlers, and the pipeline filling it."""

from __future__ import annotations

import pytest

from clearlm.errors import InvalidInputError
from clearlm.govern.policy import parse_policy
from clearlm.models import Message, SamplingParams
from clearlm.pipeline import TurnRequest, start_turn
from clearlm.store import AuditLog, AuditRecord, Database
from clearlm.store.review import (
    ESCALATED,
    AlreadyDecidedError,
    ReviewItemNotFoundError,
    ReviewQueue,
    _handlers,
    on_decision,
)


@pytest.fixture
def queue(db_url):
    return ReviewQueue(Database(db_url))


def test_items_are_listed_in_the_queues_order_per_tenant_status_and_kind(queue):
    first = queue.add("acme", "escalated_request", "  a  long\n title ", {"n": 1}, request_id="chatcmpl-1")
    second = queue.add("acme", "support_handoff", "x" * 500, {"n": 2})
    queue.add("other", "escalated_request", "theirs", {"n": 3})
    assert first.title == "a long title" and first.status == "open" and first.request_id == "chatcmpl-1"
    assert len(second.title) == 200 and second.title.endswith("…")
    assert [i.id for i in queue.list("acme")] == [first.id, second.id]  # open: oldest first
    assert [i.id for i in queue.list("acme", kind="support_handoff")] == [second.id]
    assert queue.list("acme", status="decided") == []
    got = queue.get(first.id, "acme")
    assert got.payload == {"n": 1} and got.created_at.tzinfo is not None and got.to_dict()["status"] == "open"
    with pytest.raises(ReviewItemNotFoundError):
        queue.get(first.id, "other")  # another tenant's item does not exist for it
    with pytest.raises(InvalidInputError, match="unknown review status"):
        queue.list("acme", status="closed")


def test_an_item_is_decided_once_and_an_answer_needs_its_text(queue):
    item = queue.add("acme", "escalated_request", "refund?", {})
    with pytest.raises(InvalidInputError, match="needs its text"):
        queue.decide(item.id, "acme", "answer", by="key_1", answer="  ")
    with pytest.raises(InvalidInputError, match="unknown review action"):
        queue.decide(item.id, "acme", "approve-all", by="key_1")
    with pytest.raises(ReviewItemNotFoundError):
        queue.decide(item.id, "other", "dismiss", by="key_9")
    done = queue.decide(item.id, "acme", "answer", by="key_1", answer="We refund within 14 days.", note="ok")
    assert done.status == "answered" and done.decided_by == "key_1" and done.decided_at is not None
    assert done.decision == {"action": "answer", "answer": "We refund within 14 days.", "note": "ok"}
    with pytest.raises(AlreadyDecidedError, match="already decided") as again:
        queue.decide(item.id, "acme", "dismiss", by="key_2")
    assert again.value.status_code == 409
    assert queue.get(item.id, "acme").decision["action"] == "answer"  # the first decision stands
    other = queue.add("acme", "escalated_request", "b", {})
    assert queue.decide(other.id, "acme", "approve", by="local").status == "approved"
    assert [i.id for i in queue.list("acme", status="decided")] == [other.id, item.id]  # newest first
    assert [i.id for i in queue.list("acme", status="answered")] == [item.id]


def test_a_kinds_handler_sees_the_decision_and_a_failing_one_leaves_the_item_open(queue):
    seen = []

    def handler(db, item):
        if item.decision["note"] == "fail":
            raise InvalidInputError("the conversation is gone")
        seen.append((item.id, item.status))

    on_decision("test_kind", handler)
    on_decision("test_kind", handler)  # registered once
    try:
        item = queue.add("acme", "test_kind", "t", {})
        with pytest.raises(InvalidInputError, match="gone"):
            queue.decide(item.id, "acme", "dismiss", by="k", note="fail")
        assert queue.get(item.id, "acme").status == "open" and seen == []
        queue.decide(item.id, "acme", "dismiss", by="k")
        assert seen == [(item.id, "dismissed")]
    finally:
        _handlers.pop("test_kind")


def test_the_pipeline_queues_an_escalated_turn_with_its_redacted_prompt(tiny_backend, tmp_path):
    from datetime import UTC, datetime

    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    audit = AuditLog(db)
    policy = parse_policy(
        "input:\n"
        "  - {scanner: regex, patterns: {complaint: '(?i)refund'}, action: escalate}\n"
        "  - {scanner: regex, patterns: {EMAIL: '[a-z]+@[a-z]+\\.com'}, action: redact}\n"
    )
    prompt = [Message("system", "Be brief."), Message("user", "I want a refund, mail me at bob@shop.com")]

    def turn(messages, origin=None):
        record = AuditRecord(
            request_id=f"chatcmpl-{len(audit.records())}",
            created_at=datetime.now(UTC),
            endpoint="/v1/chat/completions",
            tenant="acme",
        )
        request = TurnRequest(messages, SamplingParams(max_new_tokens=3), origin=origin)
        return start_turn(tiny_backend, request, record, audit, policy).run()

    done = turn(prompt, {"conversation_id": "conv_1"})
    turn([Message("user", "hello")])  # not escalated: not queued
    [item] = ReviewQueue(db).list("acme")
    assert item.kind == ESCALATED and item.request_id == done.record.request_id
    assert item.title == "I want a refund, mail me at [EMAIL]"  # the stored (redacted) text
    assert item.payload["prompt"][1]["content"] == "I want a refund, mail me at [EMAIL]"
    assert item.payload["output"] == done.choices[0].text and item.payload["model"] == "tiny-random-qwen2"
    assert item.payload["origin"] == {"conversation_id": "conv_1"}
    assert item.payload["findings"]["escalated"] is True
    assert item.payload["findings"]["input"]["action"] == "escalate"
    assert done.review_id == item.id  # the chat marks its held message with it
