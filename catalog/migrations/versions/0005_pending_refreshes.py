"""pending refreshes: deferred Shopify refreshes collected into one off-peak batch per shop

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

- ``pending_refreshes``: one row per (shop, product, off-peak window) that a bulk edit's
  refresh was deferred to; the shop's batch at the window's start takes them all
  (``batch_run``, ``taken_at``) and records how each ended (``outcome``, ``reason``)
  (docs/ARCHITECTURE.md#intake, issue 13).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_refreshes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop", sa.String(length=255), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("image_urls", sa.JSON(), nullable=False),
        sa.Column("product_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("webhook_id", sa.String(length=200), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_run", sa.String(length=64), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop", "product_id", "window_start", name="uq_pending_refreshes_product"),
    )
    op.create_index("ix_pending_refreshes_shop", "pending_refreshes", ["shop"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pending_refreshes_shop", table_name="pending_refreshes")
    op.drop_table("pending_refreshes")
