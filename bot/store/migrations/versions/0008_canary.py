"""canary: a merged model's rollout per model and merged head (pipeline step 5)

Revision ID: 0008_canary
Revises: 0007_shadow
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_canary"
down_revision = "0007_shadow"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canary_rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("merge_sha", sa.String(length=64), nullable=False),
        sa.Column("base_ref", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("previous_version", sa.String(length=64), nullable=True),
        sa.Column("previous_sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("routed", sa.Boolean(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_analysis_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("data_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reference_scores", sa.JSON(), nullable=True),
        sa.Column("requested_action", sa.String(length=20), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=True),
        sa.Column("requested_reason", sa.Text(), nullable=True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.Column("revert_pr_number", sa.Integer(), nullable=True),
        sa.Column("revert_head_sha", sa.String(length=64), nullable=True),
        sa.Column("paged", sa.Boolean(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository", "pr_number", "head_sha", "model"),
    )
    op.create_index("ix_canary_rollouts_status", "canary_rollouts", ["status"])


def downgrade() -> None:
    op.drop_index("ix_canary_rollouts_status", table_name="canary_rollouts")
    op.drop_table("canary_rollouts")
