"""The support API tests' keyed clients: an admin agent and a user-scoped shop key of tenant "acme", and
an admin of another tenant, "zeta"."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

KEYS = (("agent", "acme", "admin"), ("shop", "acme", "user"), ("zeta", "zeta", "admin"))


@contextlib.contextmanager
def keyed_clients(server, keys=KEYS, timeout: float = 60) -> Iterator[dict[str, httpx.Client]]:
    """{name: client} for each (name, tenant, scope) of ``keys``, each with its own new API key."""
    clients = {}
    try:
        for name, tenant, scope in keys:
            _, secret = server.state.keys.create(name, tenant=tenant, scope=scope)
            clients[name] = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=timeout
            )
        yield clients
    finally:
        for c in clients.values():
            c.close()


def ok(r: httpx.Response, status: int = 200) -> dict:
    """The response's JSON, after checking its status (the body shown when it differs)."""
    assert r.status_code == status, r.text
    return r.json()
