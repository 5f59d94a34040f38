"""Bearer-key authentication (required as soon as any API key was ever created in the database), tenants
and scopes.

A request's tenant is its key's (``default`` with open access); its scopes are its key's (open access:
every scope). Tenant-scoped resources (knowledge bases, earlier completions, the audit log, keys) of another
tenant are answered 404, as if they did not exist; a route that needs a scope the key lacks answers 403.
"""

from __future__ import annotations

import anyio
from fastapi import Request

from clearlm.server.errors import AuthenticationError, PermissionDeniedError
from clearlm.store.keys import DEFAULT_TENANT, SCOPES


async def authenticate(request: Request) -> None:
    """Check ``Authorization: Bearer KEY``; remember the key (its id for the audit record), tenant and scopes.

    Raises:
        AuthenticationError (401): keys are configured and the header is missing, malformed or names a
            revoked or unknown key.
    """
    request.state.tenant, request.state.scopes, request.state.api_key = DEFAULT_TENANT, SCOPES, None
    keys = request.app.state.clearlm.keys
    if not await anyio.to_thread.run_sync(keys.any):
        return
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
