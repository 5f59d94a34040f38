"""The database: SQLAlchemy over a SQLite file by default, or any Postgres URL at scale.

Holds API keys and the audit log. Nothing else in clearlm talks SQL.
"""

from clearlm.store.audit import AuditLog, AuditRecord
from clearlm.store.db import Database, default_url
from clearlm.store.keys import ApiKey, ApiKeys

__all__ = ["ApiKey", "ApiKeys", "AuditLog", "AuditRecord", "Database", "default_url"]
