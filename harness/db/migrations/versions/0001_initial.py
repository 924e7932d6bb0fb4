"""initial schema: runs, eval rows, curvature snapshots

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('workload', sa.String(length=128), nullable=False),
    sa.Column('variant', sa.String(length=512), nullable=False),
    sa.Column('workload_version', sa.String(length=64), nullable=False),
    sa.Column('submission', sa.String(length=128), nullable=False),
    sa.Column('submission_path', sa.Text(), nullable=False),
    sa.Column('submission_hash', sa.String(length=64), nullable=False),
    sa.Column('hparams', sa.JSON(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('rng_derivation', sa.Text(), nullable=False),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('max_steps', sa.Integer(), nullable=False),
    sa.Column('eval_every', sa.Integer(), nullable=False),
    sa.Column('chunk_mode', sa.String(length=16), nullable=False),
    sa.Column('data_source', sa.Text(), nullable=False),
    sa.Column('data_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('jax_version', sa.String(length=32), nullable=False),
    sa.Column('jaxlib_version', sa.String(length=32), nullable=False),
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('device_kind', sa.String(length=128), nullable=False),
    sa.Column('xla_flags', sa.Text(), nullable=False),
    sa.Column('git_commit', sa.String(length=64), nullable=True),
    sa.Column('environment', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('steps_to_target', sa.Integer(), nullable=True),
    sa.Column('time_to_target_s', sa.Float(), nullable=True),
    sa.Column('compile_s', sa.Float(), nullable=False),
    sa.Column('compiles', sa.Integer(), nullable=False),
    sa.Column('train_s', sa.Float(), nullable=False),
    sa.Column('eval_s', sa.Float(), nullable=False),
    sa.Column('final_step', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('host', sa.String(length=256), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_submission'), ['submission'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_variant'), ['variant'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_workload'), ['workload'], unique=False)

    op.create_table('curvature_snapshots',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('compute_s', sa.Float(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'step', 'kind')
    )
    with op.batch_alter_table('curvature_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_curvature_snapshots_run_id'), ['run_id'], unique=False)

    op.create_table('eval_rows',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=32), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('wall_s', sa.Float(), nullable=False),
    sa.Column('train_s', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'step', 'split', 'metric')
    )
    with op.batch_alter_table('eval_rows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_rows_run_id'), ['run_id'], unique=False)

    op.create_table('curvature_arrays',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('dtype', sa.String(length=16), nullable=False),
    sa.Column('shape', sa.JSON(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['snapshot_id'], ['curvature_snapshots.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('curvature_arrays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_curvature_arrays_snapshot_id'), ['snapshot_id'], unique=False)

    op.create_table('curvature_values',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['snapshot_id'], ['curvature_snapshots.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('curvature_values', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_curvature_values_snapshot_id'), ['snapshot_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('curvature_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_curvature_values_snapshot_id'))

    op.drop_table('curvature_values')
    with op.batch_alter_table('curvature_arrays', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_curvature_arrays_snapshot_id'))

    op.drop_table('curvature_arrays')
    with op.batch_alter_table('eval_rows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eval_rows_run_id'))

    op.drop_table('eval_rows')
    with op.batch_alter_table('curvature_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_curvature_snapshots_run_id'))

    op.drop_table('curvature_snapshots')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_workload'))
        batch_op.drop_index(batch_op.f('ix_runs_variant'))
        batch_op.drop_index(batch_op.f('ix_runs_submission'))
        batch_op.drop_index(batch_op.f('ix_runs_status'))

    op.drop_table('runs')
