"""curvature snapshot kinds up to 128 chars; includes_compile flag

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('curvature_snapshots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('includes_compile', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.alter_column('kind',
               existing_type=sa.VARCHAR(length=32),
               type_=sa.String(length=128),
               existing_nullable=False)



def downgrade() -> None:
    with op.batch_alter_table('curvature_snapshots', schema=None) as batch_op:
        batch_op.alter_column('kind',
               existing_type=sa.String(length=128),
               type_=sa.VARCHAR(length=32),
               existing_nullable=False)
        batch_op.drop_column('includes_compile')

