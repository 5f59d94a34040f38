"""Baseline: the schema of clearlm 0.1.0 (API keys, audit records, chain heads, retention checkpoints).

A database created by that release (tables but no ``alembic_version``) is stamped with this revision
before upgrading, so this migration only ever runs on an empty database.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("policy", sa.Text()),
        sa.Column("tenant", sa.String(64), nullable=False),
    )
    op.create_index("ix_api_keys_sha256", "api_keys", ["sha256"], unique=True)
    op.create_table(
        "audit_chain_heads",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("chain_seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("upto_seq", sa.Integer(), nullable=False),
        sa.Column("upto_hash", sa.String(64), nullable=False),
        sa.Column("pruned", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_checkpoints_tenant", "audit_checkpoints", ["tenant"])
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("chain_seq", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("api_key_id", sa.String(32)),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256)),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.JSON()),
        sa.Column("output", sa.JSON()),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("finish_reason", sa.String(32)),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("governance", sa.JSON()),
        sa.UniqueConstraint("tenant", "chain_seq"),
    )
    op.create_index("ix_audit_records_tenant", "audit_records", ["tenant"])
    op.create_index("ix_audit_records_api_key_id", "audit_records", ["api_key_id"])
    op.create_index("ix_audit_records_request_id", "audit_records", ["request_id"], unique=True)
    op.create_index("ix_audit_records_created_at", "audit_records", ["created_at"])


def downgrade() -> None:
    for table in ("audit_records", "audit_checkpoints", "audit_chain_heads", "api_keys"):
        op.drop_table(table)
