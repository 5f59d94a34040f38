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
    tenant: str = typer.Option("default", "--tenant", help="the audit chain this key's requests join"),
    db: str = DB,
) -> None:
    """Create a key and print it once (only its hash is stored). Once any key exists, the server
    requires one on every /v1 request."""
    if policy is not None:
        from clearlm.govern import load_policy

        load_policy(policy)  # refuse a bad file now, not at the key's first request
    key, secret = _keys(db).create(name, str(policy.resolve()) if policy else None, tenant)
    err_console.print(
        f"[dim]created[/] {key.id} [dim]({key.name}); store the secret now, it is not shown again:[/]"
    )
    console.print(secret)


@app.command("list")
def list_(db: str = DB) -> None:
    """List the keys (ids, names, first characters, state)."""
    table = Table("id", "name", "key", "created", "state")
    for k in _keys(db).list():
        state = "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(k.id, k.name, k.prefix + "…", f"{k.created_at:%Y-%m-%d %H:%M}", state)
    console.print(table)


@app.command()
def revoke(
    key_id: str = typer.Argument(..., help="the key's id (see `clearlm keys list`)"), db: str = DB
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    key = _keys(db).revoke(key_id)
    err_console.print(f"revoked {key.id} ({key.name})")
