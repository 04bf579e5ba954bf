"""monitoring: promoted model versions watched in production, and their judged windows

Revision ID: 0010_monitoring
Revises: 0009_inbox_lz4
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_monitoring"
down_revision = "0009_inbox_lz4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "production_monitors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("merge_sha", sa.String(length=64), nullable=False),
        sa.Column("base_ref", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("volume_history", sa.JSON(), nullable=False),
        sa.Column("baseline_profile", sa.Text(), nullable=True),
        sa.Column("shadow_profile", sa.Text(), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_severity", sa.String(length=20), nullable=True),
        sa.Column("last_report_id", sa.String(length=64), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository", "model", "version"),
    )
    op.create_index("ix_production_monitors_status", "production_monitors", ["status"])
    op.create_table(
        "drift_checks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report_json", sa.Text(), nullable=False),
        sa.Column("point", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("monitor_id", "window_end"),
    )
    op.create_index("ix_drift_checks_monitor_id", "drift_checks", ["monitor_id"])


def downgrade() -> None:
    op.drop_index("ix_drift_checks_monitor_id", table_name="drift_checks")
    op.drop_table("drift_checks")
    op.drop_index("ix_production_monitors_status", table_name="production_monitors")
    op.drop_table("production_monitors")
