"""The audit log's hash chain: how a record is hashed, how a chain's head is signed, and the signed
checkpoints that retention leaves when it prunes old records (so the rest still verifies), and how a
chain is checked against all three (``check_chain``).

Each tenant's records form a chain. Record n carries ``prev_hash`` = record n-1's ``hash`` (the first
record's is ``GENESIS``, 64 zeros) and ``hash``. Editing a record changes its hash; deleting or
reordering records breaks the links. Anyone with write access to the database could recompute every
link, so the chain's head is also signed (Ed25519) with a key kept outside the database (the file
:func:`signing_key_path`); a verifier checks it with a public key it was given, never one read from the
database. Rewriting the chain, or deleting its newest records and rewinding the head to match, then
shows as a head whose signature does not verify.

Version 2 (records written by this release; ``hash_version`` = 2), reproducible in any language:

- ``hash`` = lowercase hex SHA-256 of the UTF-8 bytes of the RFC 8785 (JSON Canonicalization Scheme)
  serialisation of::

      {"version": 2, "chain_seq": <int, 1-based position in the tenant's chain>,
       "prev_hash": <64 hex>, "record": {
          "request_id": str, "created_at": "YYYY-MM-DDTHH:MM:SS.ffffff+00:00" (UTC, 6 decimals),
          "endpoint": str, "api_key_id": str|null, "model": str|null, "parameters": object,
          "prompt": any, "output": any, "prompt_tokens": int, "completion_tokens": int,
          "latency_ms": number, "finish_reason": str|null, "status_code": int, "error": str|null,
          "governance": object|null, "tenant": str}}

  Values are the JSON stored in the row's columns. Two rules keep them inside RFC 8785's domain
  (I-JSON, RFC 7493 section 2.2): an integer outside +-(2**53 - 1) is hashed as its decimal string, and
  a non-finite float as ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.
- The head's signature is Ed25519 over the RFC 8785 bytes of
  ``{"type": "clearlm.audit.head", "version": 2, "tenant": str, "chain_seq": int, "hash": 64 hex}``,
  stored in hex in ``audit_chain_heads.signature`` and renewed with every append.
- A checkpoint's signature is Ed25519 over the RFC 8785 bytes of
  ``{"type": "clearlm.audit.checkpoint", "version": 2, "tenant": str, "upto_seq": int,
  "upto_hash": 64 hex, "pruned": int, "created_at": "...+00:00" as above}``.

Version 1 (records and checkpoints written before; ``hash_version`` / ``version`` = 1) is the same
structure without the ``version`` and ``type`` members, serialised by Python's
``json.dumps(sort_keys=True, separators=(",", ":"))`` (``ensure_ascii=False`` for records), and is still
verified as such.

What the signed head does not cover: an attacker who kept an older signed head (a backup) can put it
back together with the records up to it; deleting a tenant's whole chain (records and head) leaves no
trace in the database. Keep a copy of the signed heads elsewhere (``clearlm audit verify`` prints them; ``Verification.heads``)
where that matters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import rfc8785

from clearlm.errors import InvalidInputError
from clearlm.paths import clearlm_home
from clearlm.store.db import as_utc

GENESIS = "0" * 64
HASH_VERSION = 2  # what this release writes
_MAX_SAFE = 2**53 - 1


def timestamp(value: datetime) -> str:
    """A time as the chain hashes it: ISO 8601 in UTC with microseconds, e.g. ``2026-01-02T03:04:05.678000+00:00``."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(record) -> dict:
    """The content a record's hash covers: every field of the ``AuditRecord``, the time in UTC."""
    data = dataclasses.asdict(record)
    data["created_at"] = timestamp(record.created_at)
    return data


def _ijson(value):
    """``value`` with integers beyond +-(2**53 - 1) and non-finite floats as strings (RFC 7493 2.2)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -_MAX_SAFE <= value <= _MAX_SAFE else str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _ijson(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_ijson(v) for v in value]
    return value


def jcs(value) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value`` (after the I-JSON rules above), by the ``rfc8785`` package."""
    return rfc8785.dumps(_ijson(value))


def record_hash(record, chain_seq: int, prev_hash: str, version: int = HASH_VERSION) -> str:
    """The hex SHA-256 of a record at ``chain_seq`` after ``prev_hash`` (see the module docstring)."""
    if version == 1:
        body = json.dumps(
            {"record": canonical(record), "chain_seq": chain_seq, "prev_hash": prev_hash},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
    else:
        body = jcs(
            {"version": 2, "chain_seq": chain_seq, "prev_hash": prev_hash, "record": canonical(record)}
        )
    return hashlib.sha256(body).hexdigest()


def head_message(tenant: str, chain_seq: int, head_hash: str) -> bytes:
    """The bytes a chain head's signature covers."""
    return jcs(
        {
            "type": "clearlm.audit.head",
            "version": 2,
            "tenant": tenant,
            "chain_seq": chain_seq,
            "hash": head_hash,
        }
    )


def checkpoint_message(
    tenant: str, upto_seq: int, upto_hash: str, pruned: int, created_at: datetime, version: int = HASH_VERSION
) -> bytes:
    """The bytes a retention checkpoint's signature covers."""
    body = {
        "tenant": tenant,
        "upto_seq": upto_seq,
        "upto_hash": upto_hash,
        "pruned": pruned,
        "created_at": timestamp(created_at),
    }
    if version == 1:
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return jcs({"type": "clearlm.audit.checkpoint", "version": 2, **body})


@dataclass(frozen=True, slots=True)
class Problem:
    """A break in a chain: the tenant, the first bad record's chain position and request id (None when
    the record is gone), and what is wrong."""

    tenant: str
    chain_seq: int
    request_id: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of verifying the audit log: chains, records and checkpoints seen, the problems in chain
    order (each chain's first names its first bad record), the public key (hex) signatures were checked
    against, and each chain's head as ``(tenant, chain_seq, hash)`` (to keep elsewhere and compare later:
    the defence against an old signed head put back)."""

    tenants: int
    records: int
    checkpoints: int
    problems: tuple[Problem, ...]
    public_key: str | None = None
    heads: tuple[tuple[str, int, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


# The signing key


def signing_key_path() -> Path:
    """``$CLEARLM_AUDIT_KEY`` or ``$CLEARLM_HOME/audit-signing-key.pem`` (created on first use, mode 0600)."""
    return Path(os.environ.get("CLEARLM_AUDIT_KEY") or clearlm_home() / "audit-signing-key.pem")


def signing_key():
    """The Ed25519 private key that signs chain heads and retention checkpoints (generated once; two
    processes creating it at once end up with the same key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = signing_key_path()
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            os.link(tmp, path)  # atomic, and refuses to replace a key another process just wrote
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def public_hex(key) -> str:
    """The raw 32-byte Ed25519 public key of a private key, in hex."""
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def pinned_public_key(value: str) -> str:
    """A public key given by the user: 64 hex characters, or a file holding them, a PEM public key or
    the PEM signing key itself. Returns it in hex.

    Raises:
        InvalidInputError: neither a key nor a readable file holding one.
    """
    from cryptography.hazmat.primitives import serialization

    text = value.strip()
    if len(text) != 64 or not _is_hex(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise InvalidInputError(
                f"--public-key must be 64 hex characters or a key file, got {value!r}: "
                "`clearlm audit public-key` prints it on the machine that writes the log"
            )
        data = path.read_bytes()
        try:
            if b"PRIVATE KEY" in data:
                return public_hex(serialization.load_pem_private_key(data, password=None))
            if b"PUBLIC KEY" in data:
                raw = serialization.load_pem_public_key(data).public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                )
                return raw.hex()
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"{path} holds no Ed25519 key: {exc}") from None
        text = data.decode(errors="replace").strip()
        if len(text) != 64 or not _is_hex(text):
            raise InvalidInputError(f"{path} holds neither a PEM key nor 64 hex characters")
    return text.lower()


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def signature_valid(public_key_hex: str, signature_hex: str | None, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not signature_hex:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


# Verifying a chain


def machine_public_key() -> str:
    """The public key (hex) of this machine's signing key file.

    Raises:
        InvalidInputError: there is no signing key file.
    """
    if not signing_key_path().exists():
        raise InvalidInputError(
            f"no signing key at {signing_key_path()} to check the audit log's signatures with: pass the "
            "public key of the machine that writes the log (--public-key HEX|FILE; `clearlm audit "
            "public-key` prints it there)"
        )
    return public_hex(signing_key())


def check_chain(tenant: str, cp, rows, head, public_key: str, read) -> tuple[list[Problem], int]:
    """The problems of one tenant's chain, in chain order, and the number of its records.

    ``cp`` is its newest retention checkpoint (or None), ``rows`` its audit rows in chain order, ``head``
    its head row (or None), ``public_key`` the pinned key (hex), and ``read(row)`` the ``AuditRecord`` a
    row holds (raising ValueError for JSON that no longer parses)."""
    problems = []
    n = 0
    prev_seq, prev_hash = 0, GENESIS
    if cp is not None:
        message = checkpoint_message(
            tenant, cp.upto_seq, cp.upto_hash, cp.pruned, as_utc(cp.created_at), cp.version
        )
        if not signature_valid(public_key, cp.signature, message):
            problems.append(
                Problem(
                    tenant,
                    1,
                    None,
                    f"records 1-{cp.upto_seq} are gone behind a retention checkpoint whose signature "
                    "does not verify with the pinned key (forged or altered)",
                )
            )
        prev_seq, prev_hash = cp.upto_seq, cp.upto_hash
    last_insert = None
    for row in rows:
        n += 1
        if row.chain_seq != prev_seq + 1 or row.prev_hash != prev_hash:
            missing = row.chain_seq - prev_seq - 1
            what = (
                f"{missing} record(s) before it were deleted"
                if missing > 0
                else "its link to the previous record is broken"
            )
            problems.append(Problem(tenant, row.chain_seq, row.request_id, what))
        try:
            edited = record_hash(read(row), row.chain_seq, row.prev_hash, row.hash_version) != row.hash
            how = "its content no longer matches its hash"
        except ValueError as exc:  # JSON that no longer parses, or a value canonical JSON refuses
            edited, how = True, f"its stored JSON no longer parses: {exc}"
        if edited:
            problems.append(Problem(tenant, row.chain_seq, row.request_id, f"the record was edited ({how})"))
        if last_insert is not None and row.seq < last_insert:
            problems.append(
                Problem(
                    tenant,
                    row.chain_seq,
                    row.request_id,
                    "the record was moved (its insertion order differs from the chain's)",
                )
            )
        last_insert = row.seq
        prev_seq, prev_hash = row.chain_seq, row.hash
    if head is None:
        if n:
            problems.append(Problem(tenant, prev_seq + 1, None, "the chain's head was deleted"))
    elif (head.chain_seq, head.hash) != (prev_seq, prev_hash):
        missing = head.chain_seq - prev_seq
        problems.append(
            Problem(
                tenant,
                prev_seq + 1,
                None,
                f"the last {missing} record(s) of the chain were deleted"
                if missing > 0
                else "the chain's head does not match its last record",
            )
        )
    elif not signature_valid(public_key, head.signature, head_message(tenant, head.chain_seq, head.hash)):
        problems.append(
            Problem(
                tenant,
                prev_seq + 1,
                None,
                f"the chain head's signature does not verify with the pinned key: records after #{prev_seq} were "
                "deleted and the head rewound to match, or the chain was rewritten",
            )
        )
    problems.sort(key=lambda p: p.chain_seq)  # stable: a record's own problems keep their order
    return problems, n
