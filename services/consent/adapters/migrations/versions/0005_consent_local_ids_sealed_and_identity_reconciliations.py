"""local identifiers sealed, and NHS-number links awaiting reconciliation

Revision ID: 0005_consent
Revises: 0004_consent
Create Date: 2026-12-01 10:45:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0005_consent'
down_revision: Union[str, Sequence[str], None] = '0004_consent'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('subjects') as batch:
        batch.add_column(sa.Column(
            'local_id_sealed', sa.LargeBinary(), nullable=True,
            comment="the registering organisation's client identifier under the subject's "
                    "data key (to recompute local_lookup when the master key rotates)"))
    op.create_table(
        'identity_reconciliations',
        sa.Column('reconciliation_id', sa.String(length=40), nullable=False),
        sa.Column('subject_id', sa.String(length=40), nullable=False,
                  comment='the subject an NHS number was to be linked to'),
        sa.Column('org', sa.String(length=64), nullable=False,
                  comment='the organisation whose staff asked for the link'),
        sa.Column('reason', sa.String(length=40), nullable=False,
                  comment='nhs-number-held-by-another-subject or nhs-number-differs'),
        sa.Column('other_subject_id', sa.String(length=40), nullable=True,
                  comment='the subject that already holds the NHS number (never shown to the '
                          'organisation that asked)'),
        sa.Column('nhs_number_sealed', sa.LargeBinary(), nullable=True,
                  comment="the NHS number given, under the subject's data key"),
        sa.Column('status', sa.String(length=20), nullable=False, comment='open or resolved'),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['subject_id'], ['subjects.subject_id']),
        sa.PrimaryKeyConstraint('reconciliation_id'),
        comment='NHS-number links not applied (subjects are never merged silently): for the DPO',
    )
    op.create_index('ix_identity_reconciliations_subject_id', 'identity_reconciliations',
                    ['subject_id'])
    op.create_index('ix_identity_reconciliations_org', 'identity_reconciliations', ['org'])
    op.create_index('ix_identity_reconciliations_status', 'identity_reconciliations',
                    ['status'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('identity_reconciliations')
    with op.batch_alter_table('subjects') as batch:
        batch.drop_column('local_id_sealed')
