"""Customers of a support desk, per tenant: a profile (name, language, the desk's own attributes).

Every read names the tenant: another tenant's customer is answered as if it did not exist
(:class:`CustomerNotFoundError`, 404), as the review queue and the chat conversations do.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.store.db import Database, as_utc
from clearlm.store.tables import CustomerRow

MAX_NAME_CHARS = 200
MAX_LIST = 500  # customers per list() call
_ISO_639_1 = re.compile(r"[a-z]{2}")


class CustomerNotFoundError(ClearlmError, LookupError):
    """No customer with that id in the caller's tenant (another tenant's is not revealed)."""

    status_code = 404
    error_type = "not_found_error"
    code = "customer_not_found"


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer as read back. Fields: id (``cus_...``); tenant; name; language (ISO 639-1, e.g.
    ``en``); attributes (the desk's JSON); created_at (UTC)."""

    id: str
    tenant: str
    name: str
    language: str
    attributes: dict
    created_at: datetime

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "object": "support.customer",
            "name": self.name,
            "language": self.language,
            "attributes": self.attributes,
            "created_at": self.created_at.isoformat(),
        }


def language_code(language: str | None, what: str = "a customer's language") -> str | None:
    """``language`` as a lower-case ISO 639-1 code (``EN`` -> ``en``); None stays None.

    Raises:
        InvalidInputError: not two letters (``english``, ``en-US``).
    """
    if language is None:
        return None
    code = language.strip().lower()
    if not _ISO_639_1.fullmatch(code):
        raise InvalidInputError(
            f"{what} is a two-letter ISO 639-1 code such as 'en' or 'de', not {language!r}"
        )
    return code


def now() -> datetime:
    return datetime.now(UTC)


def customer_row(session: Session, tenant: str, customer_id: str) -> CustomerRow:
    """The row of ``customer_id`` in ``tenant`` (CustomerNotFoundError: none there)."""
    row = session.get(CustomerRow, customer_id)
    if row is None or row.tenant != tenant:
        raise CustomerNotFoundError(
            f"no customer with id {customer_id!r}: list your desk's customers to find the id"
        )
    return row


def _customer(row: CustomerRow) -> Customer:
    return Customer(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        language=row.language,
        attributes=dict(row.attributes or {}),
        created_at=as_utc(row.created_at),
    )


class Customers:
    """The customers held in ``db``, each within its tenant."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, tenant: str, name: str, language: str = "en", attributes: dict | None = None
    ) -> Customer:
        """A new customer of ``tenant``. ``name``: 1-200 characters (whitespace collapsed);
        ``language``: ISO 639-1; ``attributes``: JSON-serialisable, the desk's own fields.

        Raises:
            InvalidInputError: an empty or over-long name, a language that is not ISO 639-1, attributes
                that are not a dict.
        """
        name = " ".join((name or "").split())
        if not name or len(name) > MAX_NAME_CHARS:
            raise InvalidInputError(f"a customer's name is 1-{MAX_NAME_CHARS} characters, got {name!r}")
        if attributes is not None and not isinstance(attributes, dict):
            raise InvalidInputError("a customer's attributes are a JSON object (a dict of the desk's fields)")
        row = CustomerRow(
            id="cus_" + secrets.token_hex(8),
            tenant=tenant,
            name=name,
            language=language_code(language),
            attributes=dict(attributes or {}),
            created_at=now(),
        )
        with self.db.writing() as session:
            session.add(row)
        return _customer(row)

    def get(self, tenant: str, customer_id: str) -> Customer:
        """The customer with this id in ``tenant``.

        Raises:
            CustomerNotFoundError (404): no such customer in that tenant.
        """
        with self.db.session() as session:
            return _customer(customer_row(session, tenant, customer_id))

    def set_language(self, tenant: str, customer_id: str, language: str) -> Customer:
        """Store the customer's language (ISO 639-1; ``apps.support.translation.keep_language``).

        Raises:
            InvalidInputError: not ISO 639-1. CustomerNotFoundError (404): not in ``tenant``.
        """
        code = language_code(language)
        with self.db.writing() as session:
            row = customer_row(session, tenant, customer_id)
            row.language = code
            session.flush()
            return _customer(row)

    def list(self, tenant: str, limit: int = 100) -> list[Customer]:
        """``tenant``'s customers, newest first, at most ``limit`` (1-500).

        Raises:
            InvalidInputError: a limit out of range.
        """
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInputError(f"limit must be between 1 and {MAX_LIST}, got {limit}")
        query = (
            select(CustomerRow)
            .where(CustomerRow.tenant == tenant)
            .order_by(CustomerRow.created_at.desc(), CustomerRow.id)
            .limit(limit)
        )
        with self.db.session() as session:
            return [_customer(r) for r in session.scalars(query)]
