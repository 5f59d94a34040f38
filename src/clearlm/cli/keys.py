"""``clearlm keys``: API keys for the server (shown once at creation, stored hashed)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from clearlm.cli.common import DB, console, err_console

app = typer.Typer(help="Create, list and revoke the server's API keys.", no_args_is_help=True)


def _keys(db: str | None):
    from clearlm.store import ApiKeys, Database

    return ApiKeys(Database(db))


@app.command()
def create(
    name: str = typer.Argument(..., help="who or what will use the key"),
    policy: Path = typer.Option(None, "--policy", help="a policy file for this key's requests"),
    tenant: str = typer.Option(
        "default",
        "--tenant",
        help="whose knowledge bases, completions and audit log the key's requests see (1-32 of a-z 0-9 _ -)",
    ),
    scope: str = typer.Option(
        "user",
        "--scope",
        help="user: the model and knowledge-base routes; admin: also the tenant's keys and audit",
    ),
    db: str = DB,
) -> None:
    """Create a key and print it once (only its hash is stored). Once any key exists, the server
    requires one on every /v1 request."""
    from clearlm.store.keys import check_scope, check_tenant

    check_tenant(tenant)  # refuse bad values before anything is read or written
    check_scope(scope)
    if policy is not None:
        from clearlm.govern import load_policy

        load_policy(policy)  # refuse a bad file now, not at the key's first request
    key, secret = _keys(db).create(name, str(policy.resolve()) if policy else None, tenant, scope)
    err_console.print(
        f"[dim]created[/] {key.id} [dim]({key.name}, tenant {key.tenant}, {scope}); store the secret now, "
        "it is not shown again:[/]"
    )
    console.print(secret)


@app.command("list")
def list_(tenant: str = typer.Option(None, "--tenant", help="only this tenant's keys"), db: str = DB) -> None:
    """List the keys (ids, names, tenants, scopes, first characters, state)."""
    table = Table("id", "name", "tenant", "scopes", "key", "created", "state")
    for k in _keys(db).list(tenant=tenant):
        state = "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(
            k.id,
            k.name,
            k.tenant,
            " ".join(k.scopes),
            k.prefix + "…",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            state,
        )
    console.print(table)


@app.command()
def revoke(
    key_id: str = typer.Argument(..., help="the key's id (see `clearlm keys list`)"), db: str = DB
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    key = _keys(db).revoke(key_id)
    err_console.print(f"revoked {key.id} ({key.name})")
