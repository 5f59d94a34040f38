"""Every error as the OpenAI API shapes it: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from clearlm.errors import ClearlmError

log = logging.getLogger("clearlm.server")


class AuthenticationError(ClearlmError):
    status_code = 401
    code = "invalid_api_key"


class PermissionDeniedError(ClearlmError):
    """The key is valid but lacks the scope the route needs (an ``admin`` route called with a ``user`` key)."""

    status_code = 403
    error_type = "permission_error"
    code = "insufficient_scope"


class PayloadTooLargeError(ClearlmError):
    """A request body, or an uploaded file, past its bound."""

    status_code = 413
    code = "payload_too_large"


class OverloadedError(ClearlmError):
    """Every generation slot and queue place is taken: try again after ``retry_after`` seconds."""

    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def error_body(message: str, error_type: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_response(
    request: Request, status: int, message: str, error_type: str, code=None, param=None, headers=None
):
    """The error as a JSON response; the message is kept for the request's audit record too."""
    record = getattr(request.state, "audit_record", None)
    if record is not None and record.error is None:
        record.error = message
    return JSONResponse(error_body(message, error_type, code, param), status_code=status, headers=headers)


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none", "json-or-python"}


def _union_member(part) -> bool:
    """Whether a validation error's location part names a union member's type rather than a field."""
    if isinstance(part, int):
        return False
    return part in _TYPE_TAGS or "[" in part or "-" in part or part[:1].isupper()


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an OpenAI-style body (never a bare 500 page)."""

    @app.exception_handler(ClearlmError)
    async def _clearlm(request: Request, exc: ClearlmError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, OverloadedError) else None
        if isinstance(exc, AuthenticationError):
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(request, exc.status_code, str(exc), exc.error_type, exc.code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors() or [{"msg": "invalid request", "loc": ()}]
        # a value that fits no member of a union fails once per member: the deepest failure is the one that
        # names what is wrong (explain.options.steps, not explain.bool)
        first = max(errors, key=lambda e: len(e.get("loc", ())))
        loc = [str(p) for p in first.get("loc", ()) if p != "body" and not _union_member(p)]
        if first.get("type") == "json_invalid":
            message = "the request body is not valid JSON (it must be UTF-8 encoded JSON): " + first["msg"]
        else:
            message = f"{'.'.join(loc) or 'body'}: {first['msg']}"
        return error_response(request, 400, message, "invalid_request_error", param=".".join(loc) or None)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        error_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message, code = str(exc.detail), None
        if exc.status_code == 413:  # a body past its bound (routes.BoundedBody)
            code = PayloadTooLargeError.code
        return error_response(request, exc.status_code, message, error_type, code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(request, 500, f"internal error: {exc.__class__.__name__}", "server_error")
