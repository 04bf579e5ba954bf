"""leases: claim tokens on deliveries and evaluations, a heartbeat row for readiness

Revision ID: 0004_leases
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_leases"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(length=64), nullable=True))
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(length=64), nullable=True))
    op.create_table(
        "service_heartbeats",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("service_heartbeats")
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("claim_token")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claim_token")
