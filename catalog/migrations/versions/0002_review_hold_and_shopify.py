"""review hold and Shopify product ids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

- ``skus.shopify_product_id``: the product a SKU's images are attached to in Shopify
  (the manifest's ``shopify_product_id`` column).
- ``skus.review_item``: the rendered result a SKU entered review with (what the review
  form shows and export ships), so a later run can continue a batch's hold.
- ``batches.review_round``: how many review holds the batch has opened.
- one review decision per SKU per round (``uq_review_sku_round``).
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('skus', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shopify_product_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('review_item', sa.JSON(), nullable=True))
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_round', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_review_sku_round', ['sku_id', 'round'])


def downgrade() -> None:
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.drop_constraint('uq_review_sku_round', type_='unique')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_column('review_round')
    with op.batch_alter_table('skus', schema=None) as batch_op:
        batch_op.drop_column('review_item')
        batch_op.drop_column('shopify_product_id')
