"""What happens around every HTTP request (pure ASGI, so streaming responses are covered to their end):
an audit record is prepared; if no pipeline turn takes it over, it is written before the last byte of
the response is sent (or when the request ends without one); cleanups run even when the client leaves
(a pipeline turn's writes the turn's record, with the request's ``outcome``); then the request is counted
and logged."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

import anyio
from starlette.requests import Request

from clearlm.govern import disclosure
from clearlm.pipeline import CLIENT_CLOSED
from clearlm.store.audit import AuditRecord

log = logging.getLogger("clearlm.server")
GENERATING = {"/v1/chat/completions", "/v1/completions", "/v1/explain"}
DISCLOSURE = [(k.lower().encode(), v.encode()) for k, v in disclosure.HEADERS.items()]


def new_id() -> str:
    return uuid.uuid4().hex[:24]


class Lifecycle:
    def __init__(self, app, state) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        audited = scope["path"].startswith("/v1/")
        record = AuditRecord(
            request_id="req-" + new_id(), created_at=datetime.now(UTC), endpoint=scope["path"]
        )
        st = scope.setdefault("state", {})
        st.update(
            audit_record=record, audit_owned=False, cleanups=[], status=None, complete=False, failed=False
        )
        status = 500
        written = False

        async def finish() -> None:
            nonlocal written
            while st["cleanups"]:  # give back the generation slot, stop a generation still running
                await st["cleanups"].pop(0)()
            if written:
                return
            written = True
            route = getattr(scope.get("route"), "path", "unmatched")
            self.state.metrics.requests.labels(route, str(status)).inc()
            if not audited or st["audit_owned"]:
                return
            record.status_code = status
            record.latency_ms = (time.monotonic() - started) * 1000
            try:
                await anyio.to_thread.run_sync(self.state.audit.write, record)
            except Exception:
                log.exception("cannot write the audit record", extra={"request_id": record.request_id})

        async def send_recorded(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = st["status"] = message["status"]
                if scope["path"] in GENERATING:  # the AI disclosure mark, on every generated answer
                    message = {**message, "headers": [*message.get("headers", []), *DISCLOSURE]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                st["complete"] = True
                await finish()  # released, recorded and counted before the client has the whole answer
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception as exc:  # answered 500 by the outermost handler
            record.error = record.error or f"internal error: {exc.__class__.__name__}"
            st["failed"] = True
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await finish()
                log.info(
                    "request",
                    extra={
                        "request_id": record.request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "latency_ms": round((time.monotonic() - started) * 1000, 1),
                        "api_key_id": record.api_key_id,
                    },
                )


def own_record(request: Request) -> AuditRecord:
    """The request's audit record, taken over by a pipeline turn (which writes it itself)."""
    request.state.audit_owned = True
    return request.state.audit_record


def on_exit(request: Request, cleanup) -> None:
    """Run ``await cleanup()`` when the request ends, however it ends (idempotent cleanups only)."""
    request.state.cleanups.append(cleanup)


def outcome(request: Request) -> tuple[int, str | None]:
    """The status and error to record for a request's pipeline turn when the request ends: 500 when the
    handler raised, the response's status (with its error message) when the response was sent whole,
    else 499 (the client left first)."""
    st, record = request.state, request.state.audit_record
    if st.failed:
        return 500, record.error or "internal error"
    if st.complete and st.status is not None:
        return st.status, record.error if st.status >= 400 else None
    return CLIENT_CLOSED, "the client closed the request"
