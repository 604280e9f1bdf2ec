"""safeguarding records under the records key, pseudonym, referral source, safe contacts

Revision ID: 0005_screening
Revises: 0004_screening
Create Date: 2026-12-01 10:40:00

Rows sealed before this stay in ``risk_assessments.sealed`` under the person's data key and
are read as before; new ones go to ``record_sealed`` under screening's records key. The
latest safe contact is kept per person and organisation (a referral falls back only to its own
organisation's); raising referrals for one person is serialised on ``referral_locks``.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005_screening'
down_revision: Union[str, Sequence[str], None] = '0004_screening'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PSEUDONYM = "keyed pseudonym of the NHS number from consent: links re-registrations"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('risk_assessments') as batch:
        batch.alter_column(
            'sealed', existing_type=sa.LargeBinary(), existing_nullable=True,
            comment='answers and judgement reasons under the data key (before 0005); removed '
                    'on erasure',
            existing_comment='answers and judgement reasons under the data key; removed on '
                             'erasure')
        batch.add_column(sa.Column(
            'record_sealed', sa.LargeBinary(), nullable=True,
            comment="answers, judgement reasons, incidents (and why a checklist was not "
                    "completed) under screening's safeguarding records key; kept on erasure "
                    "while a MARAC referral rests on it"))
        batch.add_column(sa.Column(
            'checklist', sa.String(length=10), nullable=False, server_default='complete',
            comment='complete, partial or none (a referral on judgement alone)'))
        batch.add_column(sa.Column('safeguarding_pseudonym', sa.String(length=100),
                                   nullable=True, comment=PSEUDONYM))
        batch.create_index(batch.f('ix_risk_assessments_safeguarding_pseudonym'),
                           ['safeguarding_pseudonym'])
    with op.batch_alter_table('marac_referrals') as batch:
        batch.alter_column(
            'assessment_id', existing_type=sa.String(length=40), nullable=True,
            comment='the risk assessment behind it; null for a referral made outside Peerlink')
        batch.add_column(sa.Column(
            'source', sa.String(length=10), nullable=False, server_default='dash',
            comment='dash, judgement or external (made outside Peerlink)'))
        batch.add_column(sa.Column(
            'referring_agency', sa.String(length=100), nullable=True,
            comment='who made an external referral (for example the police)'))
        batch.add_column(sa.Column(
            'safeguarding_pseudonym', sa.String(length=100), nullable=True,
            comment='keyed pseudonym of the NHS number from consent: a repeat is recognised '
                    'after erasure and re-registration'))
        batch.add_column(sa.Column(
            'record_sealed', sa.LargeBinary(), nullable=True,
            comment="the safe contact under screening's safeguarding records key"))
        batch.create_index(batch.f('ix_marac_referrals_safeguarding_pseudonym'),
                           ['safeguarding_pseudonym'])
    op.create_table(
        'safe_contacts',
        sa.Column('subject_id', sa.String(length=40), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False,
                  comment="the organisation whose copy it is: safe-contact-updated's org, or "
                          "the one that gave it with a referral"),
        sa.Column('record_sealed', sa.LargeBinary(), nullable=True,
                  comment="the latest safe contact under screening's safeguarding records key"),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('subject_id', 'org', name=op.f('pk_safe_contacts')),
        comment="per person and organisation, the latest safe contact that organisation "
                "holds; a new referral by the organisation without one falls back to it, never "
                "to another organisation's")
    op.create_table(
        'referral_locks',
        sa.Column('subject_id', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('subject_id', name=op.f('pk_referral_locks')),
        comment="one row per person, locked while a safeguarding record is raised for them or "
                "their safe contact replaced, so two writers (of any organisations) see each "
                "other's referrals")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('referral_locks')
    op.drop_table('safe_contacts')
    with op.batch_alter_table('marac_referrals') as batch:
        batch.drop_index(batch.f('ix_marac_referrals_safeguarding_pseudonym'))
        for column in ('record_sealed', 'safeguarding_pseudonym', 'referring_agency', 'source'):
            batch.drop_column(column)
        batch.alter_column('assessment_id', existing_type=sa.String(length=40),
                           nullable=False, comment=None)
    with op.batch_alter_table('risk_assessments') as batch:
        batch.drop_index(batch.f('ix_risk_assessments_safeguarding_pseudonym'))
        for column in ('safeguarding_pseudonym', 'checklist', 'record_sealed'):
            batch.drop_column(column)
