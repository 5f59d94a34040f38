"""The desk's figures (``apps.support.analytics``) and the survey at close (``apps.support.csat``) on
seeded conversations, SQLite and PostgreSQL: exact counts, rates, hand-off reasons, the median
first-response time in seconds, the CSAT mean; ``since``; another tenant's conversations left out; the
survey's refusals (a bad score, a conversation not closed, a second answer, another tenant's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from clearlm.apps.support import Customers, SupportConversationNotFoundError, SupportConversations
from clearlm.apps.support.analytics import desk_analytics
from clearlm.apps.support.closing import close_conversation
from clearlm.apps.support.csat import CsatNotAllowedError, record_csat
from clearlm.apps.support.handoff import queue_handoff
from clearlm.errors import InvalidInputError
from clearlm.store import Database
from clearlm.store.tables import SupportConversationRow, SupportMessageRow

T = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
def db(db_url):
    db = Database(db_url)
    yield db
    db.close()


def conversation(db, tenant, customer, said, created=T):
    """A conversation of ``customer`` with ``said``: [(role, seconds after T)], its times set exactly."""
    conversations = SupportConversations(db)
    c = conversations.open(tenant, customer.id)
    for role, seconds in said:
        m = conversations.append_message(tenant, c.id, role, f"{role} at {seconds}s")
        with db.writing() as s:
            s.execute(
                update(SupportMessageRow)
                .where(SupportMessageRow.id == m.id)
                .values(created_at=T + timedelta(seconds=seconds))
            )
    with db.writing() as s:
        s.execute(
            update(SupportConversationRow).where(SupportConversationRow.id == c.id).values(created_at=created)
        )
    return conversations.get(tenant, c.id)


def hand_off(db, c, customer, *reasons):
    for reason in reasons:
        queue_handoff(db, SupportConversations(db).get(c.tenant, c.id), customer, reason)
    SupportConversations(db).update(c.tenant, c.id, status="handed_off")


@pytest.fixture
def seeded(db):
    ada = Customers(db).create("acme", "Ada")
    zed = Customers(db).create("globex", "Zed")
    # c1: answered in 4 s, closed without a hand-off, rated 5
    c1 = conversation(db, "acme", ada, [("customer", 0), ("assistant", 4)])
    close_conversation(db, "acme", c1.id, "local")
    record_csat(db, "acme", c1.id, 5, "  quick, thanks ")
    # c2: the flow asked first (not a response), the customer at 10 s, answered at 16 s; handed off; rated 2
    c2 = conversation(db, "acme", ada, [("assistant", 0), ("customer", 10), ("assistant", 16)])
    hand_off(db, c2, ada, "customer_asked")
    close_conversation(db, "acme", c2.id, "local")
    record_csat(db, "acme", c2.id, 2)
    # c3: a person answered after 120 s; two hand-off items; still with a person
    c3 = conversation(db, "acme", ada, [("customer", 0), ("system", 30), ("agent", 120), ("customer", 200)])
    hand_off(db, c3, ada, "tool_failed", "customer_asked")
    # c4: not answered yet; c5: nothing said; c6: an old one, closed, rated 1
    conversation(db, "acme", ada, [("customer", 0)])
    conversation(db, "acme", ada, [])
    c6 = conversation(db, "acme", ada, [], created=datetime(2020, 1, 1, tzinfo=UTC))
    close_conversation(db, "acme", c6.id, "local")
    record_csat(db, "acme", c6.id, 1)
    # another tenant's: a hand-off, an answer after 1 s, a rating: none of it counts for acme
    g = conversation(db, "globex", zed, [("customer", 0), ("assistant", 1)])
    hand_off(db, g, zed, "negative_sentiment")
    close_conversation(db, "globex", g.id, "local")
    record_csat(db, "globex", g.id, 4)
    return db, (c1, c2, c3, c6)


def test_the_desk_figures_on_seeded_conversations(seeded):
    db, _ = seeded
    a = desk_analytics(db, "acme")
    assert (a.conversations, a.open, a.handed_off_now, a.closed) == (6, 2, 1, 3)
    assert (a.handed_off, a.resolved_without_handoff) == (2, 2)  # c2, c3; c1, c6
    assert a.handoff_rate == a.resolution_rate == round(2 / 6, 4)
    assert a.reasons == {"customer_asked": 2, "tool_failed": 1}
    assert list(a.reasons) == ["customer_asked", "tool_failed"]  # most first
    assert a.median_first_response_s == 6.0 and a.first_responses == 3  # median of 4, 6, 120
    assert (a.csat_mean, a.csat_count) == (round(8 / 3, 3), 3)
    assert a.csat_scores == {1: 1, 2: 1, 3: 0, 4: 0, 5: 1}
    out = a.to_dict()
    assert out["object"] == "support.analytics" and out["csat_scores"]["5"] == 1 and out["since"] is None


def test_since_counts_only_newer_conversations_and_tenants_stay_apart(seeded):
    db, _ = seeded
    a = desk_analytics(db, "acme", since=datetime(2026, 1, 1, tzinfo=UTC))
    assert (a.conversations, a.closed, a.handed_off, a.resolved_without_handoff) == (5, 2, 2, 1)
    assert (a.resolution_rate, a.handoff_rate) == (0.2, 0.4)
    assert (a.csat_mean, a.csat_count) == (3.5, 2)
    assert a.since == "2026-01-01T00:00:00+00:00"
    g = desk_analytics(db, "globex")
    assert (g.conversations, g.handed_off, g.reasons, g.median_first_response_s) == (
        1,
        1,
        {"negative_sentiment": 1},
        1.0,
    )
    assert (g.csat_mean, g.csat_count) == (4.0, 1)
    empty = desk_analytics(db, "nobody")
    assert (empty.conversations, empty.handoff_rate, empty.median_first_response_s, empty.csat_mean) == (
        0,
        None,
        None,
        None,
    )
    with pytest.raises(InvalidInputError, match="time zone"):
        desk_analytics(db, "acme", since=datetime(2026, 1, 1))


def test_the_survey_is_answered_once_after_close_with_a_score_of_1_to_5(seeded):
    db, (c1, _, c3, _) = seeded
    row = SupportConversations(db)
    with db.session() as s:
        stored = s.get(SupportConversationRow, c1.id)
        assert (stored.csat_score, stored.csat_comment) == (5, "quick, thanks")
    for bad in (0, 6, True, "5", 4.5, None):
        with pytest.raises(InvalidInputError, match="1 to 5"):
            record_csat(db, "acme", c3.id, bad)
    with pytest.raises(InvalidInputError, match="2,000"):
        record_csat(db, "acme", c1.id, 3, "x" * 2001)
    with pytest.raises(CsatNotAllowedError, match="not closed yet"):
        record_csat(db, "acme", c3.id, 4)
    with pytest.raises(CsatNotAllowedError, match="rated already"):
        record_csat(db, "acme", c1.id, 1)
    with pytest.raises(SupportConversationNotFoundError):
        record_csat(db, "globex", c1.id, 3)
    assert row.get("acme", c3.id).status == "handed_off"
    assert desk_analytics(db, "acme").csat_count == 3  # none of the refused answers counted
