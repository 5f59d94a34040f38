"""Webhooks: the desk's events POSTed as signed JSON to the URLs a desk folder names.

A desk folder's ``webhooks.yaml`` (optional)::

    webhooks:
      - url: https://crm.example.com/hooks/clearlm
        secret_env: SHOP_WEBHOOK_SECRET      # or secret: "..." (the shared secret, never sent)
        events: [handoff.created]            # optional: every event when omitted

Events (:data:`EVENTS`): ``handoff.created`` (the desk handed a conversation to a person; data:
conversation_id, customer_id, review_id, reason, detail) and ``conversation.closed`` (data:
conversation_id, customer_id, closed_by). No message text is sent: a receiver reads the conversation
through the API with its own key.

Each delivery is ``POST url`` with the JSON body ``{"id": "evt_...", "type": EVENT, "created_at": ISO 8601
UTC, "tenant": T, "data": {...}}`` and the headers ``X-Clearlm-Event`` (the type), ``X-Clearlm-Delivery``
(the event's id: the same on every retry, so a receiver can drop duplicates) and ``X-Clearlm-Signature:
sha256=HEX``: HMAC-SHA256 of the raw body with the shared secret, as GitHub signs its webhooks
(``X-Hub-Signature-256``); :func:`verify` checks one in constant time. Deliveries run on a small thread
pool, off the request's path: each attempt has a timeout, a connection error, a timeout, a 429 or a 5xx is
retried (at most ``attempts`` tries, waiting ``backoff`` seconds, doubled each time), any other answer
ends it; a failure is logged (logger ``clearlm.support.webhooks``) and never reaches the customer's turn.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from clearlm import __version__
from clearlm.errors import InvalidInputError

log = logging.getLogger("clearlm.support.webhooks")
EVENTS = ("handoff.created", "conversation.closed")
SIGNATURE_HEADER = "X-Clearlm-Signature"
TIMEOUT_S = 5.0  # per attempt
ATTEMPTS = 3
BACKOFF_S = 1.0  # before the second attempt; doubled before each further one
WORKERS = 4


class WebhookConfigError(InvalidInputError):
    """A ``webhooks.yaml`` that cannot be used (the message names the file and the entry)."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """One receiver: ``url`` (http or https), ``secret`` (bytes of the shared secret), ``events`` (the
    types it gets, a subset of :data:`EVENTS`)."""

    url: str
    secret: bytes
    events: tuple[str, ...] = EVENTS


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=`` and the HMAC-SHA256 in lower-case hex."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (the ``X-Clearlm-Signature`` value received) signs ``body`` (the raw bytes, before
    any JSON parsing) with ``secret``; compared in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header.strip())


def load_webhooks(folder: str | Path) -> list[Webhook]:
    """The receivers of a desk folder's ``webhooks.yaml`` ([] when there is none).

    Raises:
        WebhookConfigError: unreadable YAML; an entry without an http(s) ``url``, without a secret
            (``secret``, or ``secret_env`` naming a set environment variable), or with an unknown event.
    """
    path = Path(folder) / "webhooks.yaml"
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WebhookConfigError(f"cannot read the webhooks file {path}: {exc}") from None
    entries = data.get("webhooks") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise WebhookConfigError(f"{path}: a webhooks file is a mapping with a 'webhooks' list")
    return [_webhook(entry, f"{path}: webhooks[{i}]") for i, entry in enumerate(entries)]


def _webhook(entry: object, where: str) -> Webhook:
    if not isinstance(entry, dict):
        raise WebhookConfigError(f"{where}: each webhook is a mapping with url and secret (or secret_env)")
    url = str(entry.get("url", ""))
    if httpx.URL(url).scheme not in ("http", "https") or not httpx.URL(url).host:
        raise WebhookConfigError(f"{where}: url must be an http:// or https:// URL, got {url!r}")
    secret = entry.get("secret")
    if secret is None and entry.get("secret_env"):
        secret = os.environ.get(str(entry["secret_env"]))
        if not secret:
            raise WebhookConfigError(f"{where}: the environment variable {entry['secret_env']} is not set")
    if not secret or not str(secret).strip():
        raise WebhookConfigError(f"{where}: give the shared secret as secret or secret_env (signatures)")
    events = entry.get("events", list(EVENTS))
    if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
        raise WebhookConfigError(f"{where}: events is a list of {', '.join(EVENTS)}, got {events!r}")
    return Webhook(url, str(secret).encode(), tuple(events))


def _host(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what a log may show (a hook's path or query may hold a token,
    as Slack's and Teams' incoming-webhook URLs do)."""
    u = httpx.URL(url)
    return f"{u.scheme}://{u.host}" + (f":{u.port}" if u.port else "")


class Webhooks:
    """Delivers events to ``hooks`` (see the module's description). ``timeout`` (seconds per attempt),
    ``attempts`` (>= 1) and ``backoff`` (seconds) bound a delivery: at most ``attempts * timeout`` plus
    the waits. Deliveries run on ``workers`` threads; :meth:`close` stops taking new ones."""

    def __init__(
        self,
        hooks: list[Webhook],
        timeout: float = TIMEOUT_S,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF_S,
        workers: int = WORKERS,
    ) -> None:
        if attempts < 1 or timeout <= 0 or backoff < 0:
            raise InvalidInputError("webhooks need attempts >= 1, a timeout > 0 and a backoff >= 0")
        self.hooks = list(hooks)
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="clearlm-webhook") if hooks else None

    def emit(self, event: str, tenant: str, data: dict) -> list[Future]:
        """Queue ``event`` for every receiver that takes it; returns their deliveries (each a Future of
        :meth:`deliver`'s bool). Never raises for a receiver's fault.

        Raises:
            InvalidInputError: ``event`` is not one of :data:`EVENTS` (a programming error).
        """
        if event not in EVENTS:
            raise InvalidInputError(f"unknown webhook event {event!r}: one of {', '.join(EVENTS)}")
        hooks = [h for h in self.hooks if event in h.events]
        if not hooks or self._pool is None:
            return []
        payload = {
            "id": "evt_" + secrets.token_hex(12),
            "type": event,
            "created_at": datetime.now(UTC).isoformat(),
            "tenant": tenant,
            "data": data,
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:
            return [self._pool.submit(self.deliver, h, payload["id"], event, body) for h in hooks]
        except RuntimeError:  # closed
            log.warning("webhooks closed: event not delivered", extra={"event": event})
            return []

    def deliver(self, hook: Webhook, event_id: str, event: str, body: bytes) -> bool:
        """POST ``body`` to ``hook`` (retried as described); True when the receiver answered 2xx."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"clearlm-webhooks/{__version__}",
            "X-Clearlm-Event": event,
            "X-Clearlm-Delivery": event_id,
            SIGNATURE_HEADER: sign(hook.secret, body),
        }
        why = ""
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for attempt in range(1, self.attempts + 1):
                if attempt > 1:
                    time.sleep(self.backoff * 2 ** (attempt - 2))
                try:
                    status = client.post(hook.url, content=body, headers=headers).status_code
                except httpx.HTTPError as exc:
                    why = f"{exc.__class__.__name__}: {exc}"
                    continue
                if 200 <= status < 300:
                    return True
                why = f"HTTP {status}"
                if status != 429 and status < 500:
                    break  # the receiver refuses it: trying again would not help
        log.warning(
            "webhook not delivered",
            extra={
                "event": event,
                "event_id": event_id,
                "host": _host(hook.url),
                "error": why,
                "tries": attempt,
            },
        )
        return False

    def close(self, wait: bool = False) -> None:
        """Stop taking events; with ``wait``, finish the deliveries under way."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)
