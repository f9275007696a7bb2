"""export leases

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

- ``export_leases``: one row per (destination, destination key) naming the worker that
  may write that key now and until when. A claim takes it by compare-and-set; only an
  expired lease may be taken over (docs/ARCHITECTURE.md#storage, issue 12).
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('export_leases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('destination', sa.String(length=200), nullable=False),
    sa.Column('destination_key', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=120), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('export_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['export_id'], ['exports.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('destination', 'destination_key', name='uq_export_leases_slot')
    )


def downgrade() -> None:
    op.drop_table('export_leases')
