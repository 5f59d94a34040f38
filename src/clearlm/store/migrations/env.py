"""Alembic's environment for clearlm: migrations run on the connection ``store.migrate.upgrade`` hands
over (in its transaction, under its lock), against the tables in ``store.tables``."""

from alembic import context

from clearlm.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
