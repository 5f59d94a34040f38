"""Bearer-key authentication: required as soon as any API key was ever created in the database."""

from __future__ import annotations

import anyio
from fastapi import Request

from clearlm.server.errors import AuthenticationError


async def authenticate(request: Request) -> None:
    """Check ``Authorization: Bearer KEY``; remember the key's id for the audit record.

    Raises:
        AuthenticationError (401): keys are configured and the header is missing, malformed or names a
            revoked or unknown key.
    """
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
    request.state.audit_record.api_key_id = key.id
    request.state.audit_record.tenant = key.tenant
