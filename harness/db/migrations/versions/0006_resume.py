"""Resuming a killed run from its checkpoint

runs.resumed_from_step: the step the run's last resume continued from (null: never resumed).
runs.checkpoint_path: the folder holding the latest checkpoint of the compiled program the run
trains in (harness/checkpoint.py; null: none written yet, or deleted when the run finished).
Only columns are added (no table rebuild).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resumed_from_step', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('checkpoint_path', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('checkpoint_path')
        batch_op.drop_column('resumed_from_step')
