"""shadow: a candidate's shadow stage per model and head (pipeline step 3)

Revision ID: 0007_shadow
Revises: 0006_gate
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_shadow"
down_revision = "0006_gate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_stages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("production_version", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("routed", sa.Boolean(), nullable=False),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository", "pr_number", "head_sha", "model"),
    )
    op.create_index("ix_shadow_stages_status", "shadow_stages", ["status"])


def downgrade() -> None:
    op.drop_index("ix_shadow_stages_status", table_name="shadow_stages")
    op.drop_table("shadow_stages")
