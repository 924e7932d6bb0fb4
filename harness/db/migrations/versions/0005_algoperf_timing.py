"""AlgoPerf's time-to-target beside the suite's training-only one, and the search point

runs.algoperf_time_to_target_s: AlgoPerf's submission time at the first eval that met the target
(training, its compilation, prepare_for_eval; not evals). runs.search_point: {"k", "seed"} of the
tuning_search_space.json point the hyperparameters came from (null: hparams.json).
Only columns are added (no table rebuild).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('algoperf_time_to_target_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('search_point', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('search_point')
        batch_op.drop_column('algoperf_time_to_target_s')
