"""Schema migrations (Alembic): every open brings the database to the newest revision.

The revisions live in ``store/migrations/versions`` (shipped with the package): ``0001`` is the schema of
clearlm 0.1.0, the first release, and each later one changes it. A database that release created has its
tables but no ``alembic_version`` table; it is stamped ``0001`` first, then upgraded in place.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from clearlm.errors import InvalidInputError

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema of clearlm 0.1.0
HEAD = "0015"  # the newest revision (tests/store/test_migrations.py checks it against the scripts)
_LOCK = 0x636C6D  # the PostgreSQL advisory lock that serialises concurrent migrations


def upgrade(engine: Engine) -> None:
    """Bring the database to ``HEAD`` in one transaction that holds a lock, so two processes opening a new
    database at once migrate it once (PostgreSQL: an advisory lock; SQLite: ``BEGIN IMMEDIATE``).

    Raises:
        InvalidInputError: the database was migrated by a newer clearlm (a revision this one lacks).
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    current = current_revision(engine)
    if current == HEAD:  # the common case, without loading Alembic
        return
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if current is not None:
        try:
            ScriptDirectory(str(MIGRATIONS)).get_revision(current)
        except CommandError:
            raise InvalidInputError(
                f"the database is at schema revision {current!r}, which this clearlm does not know: it was "
                "written by a newer release; upgrade clearlm (pip install -U clearlm) to open it"
            ) from None

    with engine.connect().execution_options(immediate=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        config = _config(conn)
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables and tables & {"audit_records", "api_keys"}:
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a new database or one made before migrations."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _config(conn: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config
