"""reference sets: named groups of reference runs (refs freeze / export / import);
eval_rows.value nullable (non-finite metrics are stored as NULL) in databases made before
0001 allowed it

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('eval_rows', schema=None) as batch_op:
        batch_op.alter_column('value', existing_type=sa.Float(), nullable=True)

    op.create_table('reference_sets',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('workload', sa.String(length=128), nullable=False),
    sa.Column('variant', sa.String(length=512), nullable=False),
    sa.Column('workload_version', sa.String(length=64), nullable=False),
    sa.Column('submission', sa.String(length=128), nullable=False),
    sa.Column('submission_hash', sa.String(length=64), nullable=False),
    sa.Column('hparams', sa.JSON(), nullable=False),
    sa.Column('data_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('device_kind', sa.String(length=128), nullable=False),
    sa.Column('precision', sa.String(length=16), nullable=False),
    sa.Column('steps_tolerance', sa.Float(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reference_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reference_sets_submission'), ['submission'], unique=False)
        batch_op.create_index(batch_op.f('ix_reference_sets_variant'), ['variant'], unique=False)
        batch_op.create_index(batch_op.f('ix_reference_sets_workload'), ['workload'], unique=False)

    op.create_table('reference_set_runs',
    sa.Column('set_id', sa.String(length=255), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['set_id'], ['reference_sets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('set_id', 'run_id')
    )
    with op.batch_alter_table('reference_set_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reference_set_runs_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reference_set_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reference_set_runs_run_id'))
    op.drop_table('reference_set_runs')
    with op.batch_alter_table('reference_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reference_sets_workload'))
        batch_op.drop_index(batch_op.f('ix_reference_sets_variant'))
        batch_op.drop_index(batch_op.f('ix_reference_sets_submission'))
    op.drop_table('reference_sets')
