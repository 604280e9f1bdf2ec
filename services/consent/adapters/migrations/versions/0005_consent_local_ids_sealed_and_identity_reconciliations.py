"""local identifiers sealed, NHS-number links awaiting reconciliation, safe contact per
organisation, and when each relationship began

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
                  comment='nhs-number-unclaimed, nhs-number-held-by-another-subject or '
                          'nhs-number-differs (shown to no one but the DPO)'),
        sa.Column('other_subject_id', sa.String(length=40), nullable=True,
                  comment='the subject that already holds the NHS number (never shown to the '
                          'organisation that asked)'),
        sa.Column('nhs_number_sealed', sa.LargeBinary(), nullable=True,
                  comment="the NHS number given, under the subject's data key"),
        sa.Column('status', sa.String(length=20), nullable=False,
                  comment='open, linked, rejected or awaiting-merge'),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_by', sa.String(length=200), nullable=True),
        sa.Column('resolution_reason_sealed', sa.LargeBinary(), nullable=True,
                  comment="the DPO's reason under the subject's data key"),
        sa.ForeignKeyConstraint(['subject_id'], ['subjects.subject_id']),
        sa.PrimaryKeyConstraint('reconciliation_id'),
        comment='every NHS-number link, applied only once the asking organisation\'s DPO '
                'resolves it (subjects are never merged silently)',
    )
    op.create_index('ix_identity_reconciliations_subject_id', 'identity_reconciliations',
                    ['subject_id'])
    op.create_index('ix_identity_reconciliations_org', 'identity_reconciliations', ['org'])
    op.create_index('ix_identity_reconciliations_status', 'identity_reconciliations',
                    ['status'])
    op.create_table(
        'safe_contacts',
        sa.Column('subject_id', sa.String(length=40), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False,
                  comment='the organisation whose copy this is; no other organisation reads it'),
        sa.Column('safe_contact_sealed', sa.LargeBinary(), nullable=False,
                  comment="the instructions under the subject's data key"),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['subject_id'], ['subjects.subject_id']),
        sa.PrimaryKeyConstraint('subject_id', 'org'),
        comment="each organisation's own record of the person's safe-contact instructions",
    )
    with op.batch_alter_table('subject_orgs') as batch:
        batch.add_column(sa.Column(
            'established_at', sa.DateTime(timezone=True), nullable=True,
            comment="when this organisation's relationship began (null before it was kept)"))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('subject_orgs') as batch:
        batch.drop_column('established_at')
    op.drop_table('safe_contacts')
    op.drop_table('identity_reconciliations')
    with op.batch_alter_table('subjects') as batch:
        batch.drop_column('local_id_sealed')
