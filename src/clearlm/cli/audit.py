"""``clearlm audit``: verify the hash chains, export records, apply retention."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from clearlm.cli.common import DB, console, err_console
from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.paths import write_text_atomic

app = typer.Typer(help="Verify, export and prune the audit log.", no_args_is_help=True)
RETENTION_DAYS = 180  # the EU AI Act's minimum for deployers' logs (Article 26(6))


def _log(db: str | None):
    from clearlm.store import AuditLog, Database

    return AuditLog(Database(db))


def _when(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{flag} must be an ISO date or time, e.g. 2026-11-01 or 2026-11-01T12:00, got {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


PUBLIC_KEY = typer.Option(
    None,
    "--public-key",
    help="the pinned Ed25519 public key the log must be signed with: 64 hex characters or a key file "
    "(default: this machine's signing key, $CLEARLM_AUDIT_KEY or $CLEARLM_HOME/audit-signing-key.pem)",
)


@app.command()
def verify(
    public_key: str = PUBLIC_KEY,
    tenant: str = typer.Option(None, help="only this tenant's chain"),
    db: str = DB,
) -> None:
    """Check every tenant's hash chain and its signed head with the pinned public key; name the first bad
    record of each chain (edited, deleted, moved, truncated, or behind a forged checkpoint). Exits 1 on a
    problem."""
    from clearlm.store.chain import pinned_public_key

    pinned = pinned_public_key(public_key) if public_key else None
    report = _log(db).verify(pinned, tenant=tenant)
    if report.ok:
        console.print(
            f"[green]ok[/]: {report.records} records in {report.tenants} chain(s) verify"
            + (f", from {report.checkpoints} signed retention checkpoint(s)" if report.checkpoints else "")
            + (f", signed with {report.public_key}" if report.public_key else ""),
            soft_wrap=True,  # digests are copied: never broken across lines, whatever the terminal's width
        )
        for tenant_name, seq, digest in report.heads:  # keep these elsewhere to catch an old head put back
            console.print(f"head of {tenant_name}: #{seq} {digest}", highlight=False, soft_wrap=True)
        return
    table = Table("tenant", "position", "request id", "problem", title="the audit log was tampered with")
    for p in report.problems:
        table.add_row(p.tenant, str(p.chain_seq), p.request_id or "-", p.message)
    console.print(table)
    first = {}
    for p in report.problems:
        first.setdefault(p.tenant, p)
    named = "; ".join(
        f"{t}: #{p.chain_seq}" + (f" ({p.request_id})" if p.request_id else "") for t, p in first.items()
    )
    raise ClearlmError(f"{len(report.problems)} problem(s) in the audit log; first bad record: {named}")


@app.command("public-key")
def public_key_cmd(db: str = DB) -> None:
    """Print the public key (hex) this machine signs the audit log with: pin it where the log is verified
    (`clearlm audit verify --public-key HEX`)."""
    from clearlm.store.chain import public_hex, signing_key

    console.print(public_hex(signing_key()), highlight=False, soft_wrap=True)


@app.command()
def export(
    since: str = typer.Option(None, "--since", help="from this date or time (ISO; UTC unless it says)"),
    until: str = typer.Option(None, "--until", help="up to this date or time, excluded"),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv"),
    output: Path = typer.Option(None, "--output", "-o", help="write to this file (default: standard output)"),
    tenant: str = typer.Option(None, help="only this tenant's records"),
    db: str = DB,
) -> None:
    """Export audit records, oldest first."""
    if fmt not in ("jsonl", "csv"):
        raise InvalidInputError(f"--format must be jsonl or csv, got {fmt!r}")
    rows = _log(db).export(tenant, _when(since, "--since"), _when(until, "--until"))
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["request_id"])
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                    for k, v in r.items()
                }
            )
        text = buf.getvalue()
    if output is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(output, text)
        err_console.print(f"[green]wrote[/] {len(rows)} records to {escape(str(output))}")


@app.command()
def prune(
    days: int = typer.Option(RETENTION_DAYS, "--older-than-days", help="keep this many days of records"),
    db: str = DB,
) -> None:
    """Retention: delete records older than the given days, leaving a signed checkpoint so the chains
    still verify."""
    if days < 1:
        raise InvalidInputError(f"--older-than-days must be >= 1, got {days}")
    n = _log(db).prune(datetime.now(UTC) - timedelta(days=days))
    console.print(f"pruned {n} record(s) older than {days} days")
