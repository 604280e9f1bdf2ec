"""erasure and subject access requests; local identifiers, safeguarding pseudonym

Revision ID: 0004_consent
Revises: 0003_consent
Create Date: 2026-12-01 10:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004_consent'
down_revision: Union[str, Sequence[str], None] = '0003_consent'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('subjects') as batch:
        batch.add_column(sa.Column(
            'local_lookup', sa.String(length=64), nullable=True,
            comment='HMAC of (organisation, its local client identifier), for clients '
                    'registered without an NHS number; removed on erasure'))
        batch.add_column(sa.Column(
            'safeguarding_pseudonym', sa.String(length=64), nullable=True,
            comment='HMAC of the NHS number (or local identifier) under the safeguarding '
                    'pseudonym key; removed on erasure (the safeguarding records keep it)'))
        batch.create_unique_constraint('uq_subjects_local_lookup', ['local_lookup'])
        batch.create_index('ix_subjects_safeguarding_pseudonym', ['safeguarding_pseudonym'])
    op.create_table(
        'erasure_requests',
        sa.Column('erasure_request_id', sa.String(length=40), nullable=False),
        sa.Column('subject_id', sa.String(length=40), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False,
                  comment='the holding organisation, whose DPO decides'),
        sa.Column('withdrawal_id', sa.String(length=40), nullable=False,
                  comment='the withdrawal filed with the request (erasure implies withdrawal)'),
        sa.Column('status', sa.String(length=30), nullable=False,
                  comment='awaiting-dpo-decision, refused, in-progress or complete'),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False,
                  comment='one month from the request, or up to three with an extension'),
        sa.Column('extended_months', sa.Integer(), nullable=True,
                  comment='the one extension granted (1 or 2 months), if any'),
        sa.Column('extension_reason_sealed', sa.LargeBinary(), nullable=True,
                  comment="why it was extended, under consent's records key"),
        sa.Column('decision', sa.String(length=30), nullable=True,
                  comment='approve, approve-except-retained or refuse'),
        sa.Column('decision_reason_sealed', sa.LargeBinary(), nullable=True,
                  comment="the DPO's reason under consent's records key (the person must be "
                          "told)"),
        sa.Column('decided_by', sa.String(length=200), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('scope', sa.String(length=20), nullable=True,
                  comment='subject or organisation'),
        sa.Column('retained', sa.String(length=200), nullable=True,
                  comment='record kinds kept under another lawful basis, comma-separated'),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['subject_id'], ['subjects.subject_id']),
        sa.PrimaryKeyConstraint('erasure_request_id'),
        comment="Art. 17 requests, decided by the holding organisation's DPO",
    )
    op.create_index('ix_erasure_requests_subject_id', 'erasure_requests', ['subject_id'])
    op.create_index('ix_erasure_requests_org', 'erasure_requests', ['org'])
    op.create_index('ix_erasure_requests_status', 'erasure_requests', ['status'])
    op.create_table(
        'subject_access_requests',
        sa.Column('request_id', sa.String(length=40), nullable=False),
        sa.Column('subject_id', sa.String(length=40), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False, comment='open or complete'),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['subject_id'], ['subjects.subject_id']),
        sa.PrimaryKeyConstraint('request_id'),
        comment='Art. 15 requests: the DPO exports everything held, within one month',
    )
    op.create_index('ix_subject_access_requests_subject_id', 'subject_access_requests',
                    ['subject_id'])
    op.create_index('ix_subject_access_requests_org', 'subject_access_requests', ['org'])
    op.create_index('ix_subject_access_requests_status', 'subject_access_requests', ['status'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('subject_access_requests')
    op.drop_table('erasure_requests')
    with op.batch_alter_table('subjects') as batch:
        batch.drop_index('ix_subjects_safeguarding_pseudonym')
        batch.drop_constraint('uq_subjects_local_lookup', type_='unique')
        batch.drop_column('safeguarding_pseudonym')
        batch.drop_column('local_lookup')
