"""Opening the database: a SQLite file (WAL mode) by default, any SQLAlchemy URL (Postgres) at scale."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from clearlm.errors import InvalidInputError
from clearlm.paths import clearlm_home
from clearlm.store.migrate import upgrade


def default_url() -> str:
    """``sqlite:///$CLEARLM_HOME/clearlm.db``."""
    return f"sqlite:///{clearlm_home() / 'clearlm.db'}"


class Database:
    """An engine and its session factory. Opening creates the tables, or upgrades a database an earlier
    release wrote to the current schema (``store.migrate``).

    Args:
        url: a SQLAlchemy URL, e.g. ``sqlite:///path/clearlm.db`` or ``postgresql+psycopg://user@host/db``
            (``postgresql://`` is taken to mean the psycopg 3 driver). None = :func:`default_url`.

    Raises:
        InvalidInputError: a malformed URL, an unsupported driver, or a database that cannot be reached.
    """

    def __init__(self, url: str | None = None) -> None:
        url = url or default_url()
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InvalidInputError(
                f"cannot parse the database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
            ) from None
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict = {"pool_pre_ping": True}
        if self.is_sqlite and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        try:
            self.engine = create_engine(parsed, **kwargs)
        except Exception as exc:  # a missing driver module, an unknown dialect
            raise InvalidInputError(f"cannot use the database URL {url!r}: {exc}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        try:
            with self._first_open_lock():
                upgrade(self.engine)
        except OperationalError as exc:
            raise InvalidInputError(
                f"cannot open the database {parsed.render_as_string(hide_password=True)}: {exc.orig}"
            ) from None
        self.session: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A session in a transaction that takes the write lock at once (SQLite: BEGIN IMMEDIATE): one that
        read first and wrote later would fail ("database is locked") when another writer (the audit log)
        committed in between."""
        conn = self.engine.connect().execution_options(immediate=True)
        with conn, self.session(bind=conn) as session, session.begin():
            yield session

    def _first_open_lock(self):
        """For a SQLite file, a file lock (``PATH.lock``) around the first connections and the migration:
        processes that open a new database at once would otherwise race to switch it to WAL, which SQLite
        answers with "database is locked" without waiting. PostgreSQL serialises in ``upgrade``."""
        if not self.is_sqlite or self.url.database in (None, "", ":memory:"):
            return nullcontext()
        from filelock import FileLock

        return FileLock(str(Path(self.url.database).expanduser()) + ".lock", timeout=60)

    def close(self) -> None:
        self.engine.dispose()


def as_utc(value: datetime | None) -> datetime | None:
    """A datetime read back from the database, in UTC (SQLite keeps no time zone; clearlm writes UTC)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # SQLAlchemy, not the sqlite3 module, begins transactions (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    # WAL: readers never block the writer, and a killed process loses nothing that was committed.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn) -> None:
    # A connection opened with execution_options(immediate=True) takes SQLite's write lock at once, so
    # reading a chain's head and appending to it cannot interleave with another writer (SQLAlchemy's
    # documented recipe for pysqlite transactions).
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")
