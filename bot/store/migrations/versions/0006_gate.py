"""gate: each head of a PR (since when, what it changes, against which production) and an
indexed record of the commands already handled

Revision ID: 0006_gate
Revises: 0005_outbox
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_gate"
down_revision = "0005_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pr_heads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("base_ref", sa.String(length=300), nullable=False),
        sa.Column("production_branch", sa.String(length=300), nullable=True),
        sa.Column("production_sha", sa.String(length=64), nullable=True),
        sa.Column("paths_read", sa.Boolean(), nullable=False),
        sa.Column("paths_problem", sa.Text(), nullable=True),
        sa.Column("models", sa.JSON(), nullable=True),
        sa.Column("outside_paths", sa.JSON(), nullable=True),
        sa.Column("outside_count", sa.Integer(), nullable=False),
        sa.Column("policy_changed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository", "pr_number", "head_sha"),
    )
    op.create_table(
        "command_receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        # The unique constraint is the index the dedupe lookup uses.
        sa.UniqueConstraint("repository", "pr_number", "key"),
    )


def downgrade() -> None:
    op.drop_table("command_receipts")
    op.drop_table("pr_heads")
