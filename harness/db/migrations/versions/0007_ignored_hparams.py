"""Hyperparameters a run's workload ignored

runs.ignored_hparams: {name: value} of the hyperparameters the workload ignored as AlgoPerf's
own does (a dropout rate on a model without dropout); null: none ignored. Only a column is
added (no table rebuild).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ignored_hparams', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('ignored_hparams')
