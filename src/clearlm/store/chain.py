"""The audit log's hash chain: how a record is hashed, how a chain is verified, and the Ed25519-signed
checkpoints that retention leaves when it prunes old records (so the rest still verifies).

Each tenant's records form a chain: record n carries ``prev_hash`` = record n-1's ``hash`` (the first
record's is 64 zeros) and ``hash`` = SHA-256 of the canonical JSON of its content, ``chain_seq`` and
``prev_hash``. Editing a record changes its hash; deleting or reordering records breaks the links.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clearlm.paths import clearlm_home

GENESIS = "0" * 64


def canonical(record) -> dict:
    """The content a record's hash covers: every field of the ``AuditRecord``, the time in UTC."""
    data = dataclasses.asdict(record)
    data["created_at"] = record.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    return data


def record_hash(record, chain_seq: int, prev_hash: str) -> str:
    body = json.dumps(
        {"record": canonical(record), "chain_seq": chain_seq, "prev_hash": prev_hash},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Problem:
    """A break in a chain: the tenant, the record's chain position and request id, and what is wrong."""

    tenant: str
    chain_seq: int
    request_id: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Verification:
    tenants: int
    records: int
    checkpoints: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


# Signing checkpoints


def signing_key_path() -> Path:
    """``$CLEARLM_AUDIT_KEY`` or ``$CLEARLM_HOME/audit-signing-key.pem`` (created on first use, mode 0600)."""
    return Path(os.environ.get("CLEARLM_AUDIT_KEY") or clearlm_home() / "audit-signing-key.pem")


def signing_key():
    """The Ed25519 private key that signs retention checkpoints (generated once)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = signing_key_path()
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def public_hex(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def checkpoint_message(
    tenant: str, upto_seq: int, upto_hash: str, pruned: int, created_at: datetime
) -> bytes:
    body = {
        "tenant": tenant,
        "upto_seq": upto_seq,
        "upto_hash": upto_hash,
        "pruned": pruned,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def signature_valid(public_key_hex: str, signature_hex: str, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True
