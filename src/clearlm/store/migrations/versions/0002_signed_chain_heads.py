"""The audit chain hardened: chain heads signed with a key outside the database, the record hash's
version (2: RFC 8785 canonical JSON), the checkpoint message's version, and unbounded text for the
values a caller controls (endpoint, model, finish_reason), which used to lose the record on PostgreSQL
when longer than their columns.

Existing records and checkpoints keep version 1 and verify as before. Each existing chain head is signed
here, once, with this machine's signing key (``store.chain.signing_key_path``): from then on rewinding a
head shows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("hash_version", sa.Integer(), server_default="1", nullable=False))
        batch.alter_column("endpoint", type_=sa.Text(), existing_type=sa.String(64), existing_nullable=False)
        batch.alter_column("model", type_=sa.Text(), existing_type=sa.String(256), existing_nullable=True)
        batch.alter_column(
            "finish_reason", type_=sa.Text(), existing_type=sa.String(32), existing_nullable=True
        )
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("audit_chain_heads") as batch:
        batch.add_column(sa.Column("signature", sa.Text(), nullable=True))
    _sign_heads()


def _sign_heads() -> None:
    from clearlm.store.chain import head_message, signing_key

    bind = op.get_bind()
    heads = sa.table(
        "audit_chain_heads",
        sa.column("tenant"),
        sa.column("chain_seq"),
        sa.column("hash"),
        sa.column("signature"),
    )
    rows = bind.execute(sa.select(heads.c.tenant, heads.c.chain_seq, heads.c.hash)).all()
    if not rows:
        return
    try:
        key = signing_key()
    except OSError as exc:  # the heads stay unsigned, and `clearlm audit verify` says so
        logging.getLogger(__name__).warning("cannot sign the audit chain heads: %s", exc)
        return
    for tenant, seq, digest in rows:
        signature = key.sign(head_message(tenant, seq, digest)).hex()
        bind.execute(heads.update().where(heads.c.tenant == tenant).values(signature=signature))


def downgrade() -> None:
    with op.batch_alter_table("audit_chain_heads") as batch:
        batch.drop_column("signature")
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.drop_column("version")
    with op.batch_alter_table("audit_records") as batch:
        batch.alter_column("finish_reason", type_=sa.String(32), existing_type=sa.Text())
        batch.alter_column("model", type_=sa.String(256), existing_type=sa.Text())
        batch.alter_column("endpoint", type_=sa.String(64), existing_type=sa.Text())
        batch.drop_column("hash_version")
