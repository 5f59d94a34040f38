"""The database: SQLAlchemy over a SQLite file by default, or any Postgres URL at scale.

Holds API keys and the audit log. Nothing else in clearlm talks SQL. The schema is migrated with
Alembic on open (``store.migrate``).
"""

from clearlm.store.audit import AuditLog, AuditRecord, UnreadableRecordError
from clearlm.store.db import Database, default_url
from clearlm.store.keys import ApiKey, ApiKeys

__all__ = ["ApiKey", "ApiKeys", "AuditLog", "AuditRecord", "Database", "UnreadableRecordError", "default_url"]
