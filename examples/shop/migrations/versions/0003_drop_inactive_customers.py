"""drop inactive customers and the phone column

The migration that loses data: its downgrade() brings the column back, but not the rows
it deleted, nor the phone numbers. This is the moment migsnap exists for.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE NOT active)")
    op.execute("DELETE FROM customers WHERE NOT active")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("phone")


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(40), nullable=True))
