"""sweeps; how a run was made (origin, tag, sweep) and timed (group size); per-step training losses

runs.sweep_id has no foreign key: adding one makes SQLite rebuild the runs table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sweeps',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=True),
        sa.Column('command', sa.Text(), nullable=False),
        sa.Column('spec', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_sweeps_name'), 'sweeps', ['name'], unique=False)
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=16), nullable=False,
                                      server_default='run'))
        batch_op.add_column(sa.Column('tag', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('sweep_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('group_size', sa.Integer(), nullable=False,
                                      server_default='1'))
        batch_op.add_column(sa.Column('stop_at_target', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column('divergence_factor', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('compile_cache_hit', sa.Boolean(), nullable=True))
        batch_op.create_index(batch_op.f('ix_runs_origin'), ['origin'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_tag'), ['tag'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_sweep_id'), ['sweep_id'], unique=False)
    op.create_table(
        'train_losses',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.String(length=36), nullable=False),
        sa.Column('start_step', sa.Integer(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('run_id', 'start_step'),
    )
    op.create_index(op.f('ix_train_losses_run_id'), 'train_losses', ['run_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_train_losses_run_id'), table_name='train_losses')
    op.drop_table('train_losses')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_sweep_id'))
        batch_op.drop_index(batch_op.f('ix_runs_tag'))
        batch_op.drop_index(batch_op.f('ix_runs_origin'))
        for column in ('compile_cache_hit', 'divergence_factor', 'stop_at_target', 'group_size',
                       'sweep_id', 'tag', 'origin'):
            batch_op.drop_column(column)
    op.drop_index(op.f('ix_sweeps_name'), table_name='sweeps')
    op.drop_table('sweeps')
