"""The desk's webhooks (``clearlm.apps.support.webhooks``), against real HTTP receivers on loopback: the
signature verifies over the raw body (and fails for another secret or a changed body), failed deliveries
are retried at most ``attempts`` times with the same delivery id, a refusal (4xx) is not retried, a dead
receiver is logged and never reaches the caller; over a real server, ``handoff.created`` and
``conversation.closed`` fire once per event, and a dead receiver beside a live one does not break a turn."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from clearlm.apps.support.webhooks import (
    EVENTS,
    SIGNATURE_HEADER,
    Webhook,
    WebhookConfigError,
    Webhooks,
    load_webhooks,
    sign,
    verify,
)

SECRET = b"whsec-test-0123456789"
DESK = Path(__file__).parents[3] / "examples" / "support"


class Receiver:
    """A webhook receiver on 127.0.0.1 (a thread): keeps every request's headers and raw body, answers
    with the statuses of ``answers`` in turn (then 200), and checks each signature with ``SECRET``."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.got: list[tuple[dict, bytes, bool]] = []
        self.answers = list(answers or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(SECRET, body, self.headers.get(SIGNATURE_HEADER))
                receiver.got.append((dict(self.headers), body, ok))
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body, _ in self.got]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def start(answers: list[int] | None = None) -> Receiver:
        made.append(Receiver(answers))
        return made[-1]

    yield start
    for r in made:
        r.close()


def dead_url() -> str:
    """A loopback URL nothing listens on (a port just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


def test_the_signature_verifies_over_the_raw_body(receiver):
    r = receiver()
    hooks = Webhooks([Webhook(r.url, SECRET)])
    data = {"conversation_id": "sup_1", "customer_id": "cus_1", "review_id": "rev_1"}
    [delivery] = hooks.emit("handoff.created", "acme", data)
    assert delivery.result(timeout=10) is True
    [(headers, body, ok)] = r.got
    assert ok
    assert headers[SIGNATURE_HEADER] == sign(SECRET, body)
    assert headers[SIGNATURE_HEADER].startswith("sha256=") and len(headers[SIGNATURE_HEADER]) == 7 + 64
    assert not verify(b"another secret", body, headers[SIGNATURE_HEADER])
    assert not verify(SECRET, body.replace(b"sup_1", b"sup_2"), headers[SIGNATURE_HEADER])
    assert not verify(SECRET, body, None)
    event = json.loads(body)
    assert event["type"] == headers["X-Clearlm-Event"] == "handoff.created"
    assert event["id"] == headers["X-Clearlm-Delivery"] and event["id"].startswith("evt_")
    assert (event["tenant"], event["data"]) == ("acme", data)
    assert headers["Content-Type"] == "application/json"
    hooks.close()


def test_a_known_hmac_value():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign(b"Jefe", b"what do ya want for nothing?") == "sha256=" + expected


def test_server_errors_are_retried_with_the_same_delivery_id(receiver):
    r = receiver([500, 503])
    hooks = Webhooks([Webhook(r.url, SECRET)], backoff=0.01)
    assert hooks.emit("conversation.closed", "acme", {"conversation_id": "sup_1"})[0].result(10) is True
    assert len(r.got) == 3
    assert len({h["X-Clearlm-Delivery"] for h, _, _ in r.got}) == 1
    assert len({b for _, b, _ in r.got}) == 1 and all(ok for _, _, ok in r.got)


def test_retries_are_bounded_and_a_refusal_is_not_retried(receiver, caplog):
    failing = receiver([500] * 10)
    refusing = receiver([400])
    hooks = Webhooks([Webhook(failing.url, SECRET), Webhook(refusing.url, SECRET)], attempts=3, backoff=0)
    with caplog.at_level(logging.WARNING, logger="clearlm.support.webhooks"):
        done = [f.result(10) for f in hooks.emit("handoff.created", "acme", {})]
    assert done == [False, False]
    assert (len(failing.got), len(refusing.got)) == (3, 1)
    errors = sorted(r.error for r in caplog.records if r.message == "webhook not delivered")
    assert errors == ["HTTP 400", "HTTP 500"]


def test_a_dead_receiver_is_logged_and_never_blocks_the_caller(caplog):
    url = dead_url() + "?token=T0KEN"
    hooks = Webhooks([Webhook(url, SECRET)], timeout=1, attempts=2, backoff=0.5)
    with caplog.at_level(logging.WARNING, logger="clearlm.support.webhooks"):
        started = time.monotonic()
        [delivery] = hooks.emit("handoff.created", "acme", {})
        assert time.monotonic() - started < 0.2  # queued: the wait and the retries happen elsewhere
        assert delivery.result(timeout=10) is False
    [record] = [r for r in caplog.records if r.message == "webhook not delivered"]
    assert record.tries == 2 and "ConnectError" in record.error
    assert record.host == url.split("/hooks")[0]  # the URL's path and query (a token?) stay out of logs


def test_a_receiver_gets_only_the_events_it_asked_for(receiver):
    r = receiver()
    hooks = Webhooks([Webhook(r.url, SECRET, ("conversation.closed",))])
    assert hooks.emit("handoff.created", "acme", {}) == []
    [f.result(10) for f in hooks.emit("conversation.closed", "acme", {"conversation_id": "sup_9"})]
    assert [e["type"] for e in r.events()] == ["conversation.closed"]
    with pytest.raises(ValueError, match="unknown webhook event"):
        hooks.emit("conversation.opened", "acme", {})


def test_webhooks_yaml_is_read_and_checked(tmp_path, monkeypatch):
    assert load_webhooks(tmp_path) == []  # no file: no webhooks
    monkeypatch.setenv("SHOP_HOOK_SECRET", "s3cret")
    (tmp_path / "webhooks.yaml").write_text(
        "webhooks:\n"
        "  - {url: 'https://crm.example/hooks', secret_env: SHOP_HOOK_SECRET}\n"
        "  - {url: 'http://127.0.0.1:9/h', secret: abc, events: [conversation.closed]}\n"
    )
    assert load_webhooks(tmp_path) == [
        Webhook("https://crm.example/hooks", b"s3cret", EVENTS),
        Webhook("http://127.0.0.1:9/h", b"abc", ("conversation.closed",)),
    ]
    for entry, message in [
        ("{url: 'ftp://x/h', secret: a}", "http:// or https://"),
        ("{url: 'https://x/h'}", "shared secret"),
        ("{url: 'https://x/h', secret_env: NOT_SET_ANYWHERE_42}", "NOT_SET_ANYWHERE_42 is not set"),
        ("{url: 'https://x/h', secret: a, events: [order.paid]}", "events is a list of"),
    ]:
        (tmp_path / "webhooks.yaml").write_text(f"webhooks:\n  - {entry}\n")
        with pytest.raises(WebhookConfigError, match=message) as caught:
            load_webhooks(tmp_path)
        assert "webhooks[0]" in str(caught.value)


def wait_for(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_events_fire_once_each_over_the_server_and_a_dead_receiver_breaks_nothing(
    serve, tiny_backend, tmp_path, receiver
):
    live = receiver()
    desk = tmp_path / "desk"
    shutil.copytree(DESK, desk)
    (desk / "webhooks.yaml").write_text(
        f"webhooks:\n  - {{url: '{dead_url()}', secret: dead}}\n"
        f"  - {{url: '{live.url}', secret: {SECRET.decode()}}}\n"
    )
    server = serve(tiny_backend, support_desk=str(desk), default_max_tokens=4)
    with httpx.Client(base_url=server.url, timeout=60) as api:
        customer = api.post("/support/customers", json={"name": "Ana"}).json()
        cid = api.post("/support/conversations", json={"customer_id": customer["id"]}).json()["conversation"][
            "id"
        ]
        started = time.monotonic()
        turn = api.post(f"/support/conversations/{cid}/messages", json={"text": "I want a human, please"})
        assert turn.status_code == 200, turn.text
        handoff = turn.json()["handoff"]
        assert handoff["reason"] == "customer_asked" and turn.json()["conversation"]["status"] == "handed_off"
        silent = api.post(f"/support/conversations/{cid}/messages", json={"text": "Hello?"})
        assert silent.status_code == 200 and silent.json()["handoff"] is None
        wait_for(lambda: len(live.got) == 1)
        closed = api.post(f"/support/conversations/{cid}/close")
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        last = closed.json()["messages"][-1]
        assert (last["role"], last["text"]) == ("system", "The conversation was closed.")
        again = api.post(f"/support/conversations/{cid}/close")
        assert again.status_code == 409 and again.json()["error"]["code"] == "support_conversation_closed"
        wait_for(lambda: len(live.got) == 2)
        refused = api.post(f"/support/conversations/{cid}/messages", json={"text": "one more"})
        assert refused.status_code == 400 and "closed" in refused.json()["error"]["message"]
        assert time.monotonic() - started < 30
        item = api.get(f"/review/{handoff['review_id']}").json()
        assert item["status"] == "dismissed"  # closing dismissed the open hand-off item
    time.sleep(0.3)  # time for a duplicate to arrive, were one sent
    assert all(ok for _, _, ok in live.got)
    assert [(e["type"], e["tenant"]) for e in live.events()] == [
        ("handoff.created", "default"),
        ("conversation.closed", "default"),
    ]
    first, second = (e["data"] for e in live.events())
    assert first == {
        "conversation_id": cid,
        "customer_id": customer["id"],
        "review_id": handoff["review_id"],
        "reason": "customer_asked",
        "detail": None,
    }
    assert second == {"conversation_id": cid, "customer_id": customer["id"], "closed_by": "local"}


def test_of_closes_at_once_one_wins_so_conversation_closed_is_sent_once(db_url):
    from concurrent.futures import ThreadPoolExecutor

    from clearlm.apps.support import Customers, SupportConversations
    from clearlm.apps.support.closing import AlreadyClosedError, close_conversation
    from clearlm.store import Database

    db = Database(db_url)
    customer = Customers(db).create("acme", "Ana")
    conversation = SupportConversations(db).open("acme", customer.id)

    def close(_) -> str:
        try:
            return close_conversation(db, "acme", conversation.id, "local").status
        except AlreadyClosedError:
            return "refused"

    with ThreadPoolExecutor(6) as pool:
        outcomes = sorted(pool.map(close, range(6)))
    assert outcomes == ["closed"] + ["refused"] * 5
    messages = SupportConversations(db).get("acme", conversation.id).messages
    assert [(m.role, m.text) for m in messages] == [("system", "The conversation was closed.")]
    with pytest.raises(LookupError):  # another tenant's: not found
        close_conversation(db, "zeta", conversation.id, "local")
    db.close()
