"""Authentication (required as soon as any API key was ever created in the database), tenants and scopes.

A request authenticates with ``Authorization: Bearer KEY``, or, from the web UI, with the session cookie
(``clearlm_session``) its sign-in set; a state-changing request made with the cookie must also send the
session's CSRF token in ``X-CSRF-Token`` (403 otherwise), so another site cannot act with it.

A request's tenant is its key's (``default`` with open access); its scopes are its key's (open access:
every scope). Tenant-scoped resources (knowledge bases, earlier completions, the audit log, keys) of another
tenant are answered 404, as if they did not exist; a route that needs a scope the key lacks answers 403.
"""

from __future__ import annotations

import anyio
from fastapi import Request

from clearlm.server.errors import AuthenticationError, PermissionDeniedError
from clearlm.store.keys import DEFAULT_TENANT, SCOPES
from clearlm.store.sessions import SignIn

SESSION_COOKIE = "clearlm_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def authenticate(request: Request) -> None:
    """Check ``Authorization: Bearer KEY`` or the session cookie; remember the key (its id for the audit
    record), tenant and scopes.

    Raises:
        AuthenticationError (401): keys are configured and the header is missing, malformed or names a
            revoked or unknown key, or the session cookie is unknown, expired or its key revoked.
        PermissionDeniedError (403): a state-changing request with the cookie lacks the CSRF token.
    """
    request.state.tenant, request.state.scopes, request.state.api_key = DEFAULT_TENANT, SCOPES, None
    request.state.signin = None
    s = request.app.state.clearlm
    if "authorization" not in request.headers and SESSION_COOKIE in request.cookies:
        signin = await anyio.to_thread.run_sync(s.sessions.get, request.cookies[SESSION_COOKIE])
        if signin is not None:
            _check_csrf(request, signin)
            _adopt(request, signin)
            return
    keys = s.keys
    if not await anyio.to_thread.run_sync(keys.any):
        return
    if "authorization" not in request.headers and SESSION_COOKIE in request.cookies:
        raise AuthenticationError(
            "your sign-in has ended (expired, signed out or key revoked): sign in again"
        )
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError(
            "this server needs an API key: send the header Authorization: Bearer YOUR_KEY"
        )
    key = await anyio.to_thread.run_sync(keys.verify, secret.strip())
    if key is None:
        raise AuthenticationError("the API key is not valid (unknown or revoked): ask for a new one")
    request.state.key_policy = key.policy
    request.state.api_key = key
    request.state.tenant = key.tenant
    request.state.scopes = tuple(s for s in SCOPES if key.allows(s))
    request.state.audit_record.api_key_id = key.id
    request.state.audit_record.tenant = key.tenant


def _check_csrf(request: Request, signin: SignIn) -> None:
    if request.method in SAFE_METHODS:
        return
    if request.headers.get(CSRF_HEADER, "") != signin.csrf:
        raise PermissionDeniedError(
            "the request carries the session cookie but not its CSRF token: reload the page and try again"
        )


def _adopt(request: Request, signin: SignIn) -> None:
    key = signin.api_key
    request.state.signin = signin
    request.state.tenant, request.state.scopes, request.state.api_key = signin.tenant, signin.scopes, key
    request.state.audit_record.tenant = signin.tenant
    if key is not None:
        request.state.key_policy = key.policy
        request.state.audit_record.api_key_id = key.id


def user_of(request: Request) -> str:
    """Whose conversations a request sees: its key's id, or ``local`` with open access."""
    key = getattr(request.state, "api_key", None)
    return key.id if key is not None else "local"


def tenant_of(request: Request) -> str:
    """The tenant whose resources this request may see."""
    return getattr(request.state, "tenant", DEFAULT_TENANT)


async def require_admin(request: Request) -> None:
    """A dependency of the admin routes (after ``authenticate``).

    Raises:
        PermissionDeniedError (403): the key lacks the ``admin`` scope.
    """
    if "admin" not in getattr(request.state, "scopes", ()):
        raise PermissionDeniedError(
            "this route needs an admin key of your tenant: ask an admin for one "
            "(clearlm keys create NAME --tenant T --scope admin)"
        )
