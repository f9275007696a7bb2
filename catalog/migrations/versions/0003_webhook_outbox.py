"""webhook outbox and delivery dedupe on content and Shopify event id

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

- ``event_outbox``: the Prefect event of each accepted delivery, written in the
  delivery's transaction and stamped ``sent_at`` by the relay once the Prefect API
  accepted it (docs/ARCHITECTURE.md#intake).
- ``webhook_deliveries.content_key`` (unique): shop, product, ``updated_at`` and body
  hash, so a captured body re-posted under a new webhook id is a duplicate.
- ``webhook_deliveries.shopify_event_id``, unique per shop: ``X-Shopify-Event-Id``.

Existing rows keep NULL in both new columns (NULLs never collide), so the upgrade cannot
fail on old replays.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("shopify_event_id", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint("uq_webhook_deliveries_content_key", ["content_key"])
        batch_op.create_unique_constraint("uq_webhook_deliveries_event", ["shop", "shopify_event_id"])
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_deliveries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_outbox_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_outbox_sent_at"), ["sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_outbox_sent_at"))
        batch_op.drop_index(batch_op.f("ix_event_outbox_delivery_id"))
    op.drop_table("event_outbox")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_webhook_deliveries_event", type_="unique")
        batch_op.drop_constraint("uq_webhook_deliveries_content_key", type_="unique")
        batch_op.drop_column("shopify_event_id")
        batch_op.drop_column("content_key")
