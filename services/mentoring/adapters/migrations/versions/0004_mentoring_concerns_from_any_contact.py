"""safeguarding concerns from any contact, their state history, the MARAC projection and
safe contact kept under the records key

Revision ID: 0004_mentoring
Revises: 0003_mentoring
Create Date: 2026-12-01 10:40:00.000000

Concerns raised before this revision keep status open or closed, with no raised_at (their
raised_on counts) and no history. Referrals keep their data-key sealed safe contact until it
is next touched (withdrawal, update), when it moves under the records key; their safe contact
is the referrer's copy (safe_contact_org null), as given with the referral.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision: str = '0004_mentoring'
down_revision: Union[str, Sequence[str], None] = '0003_mentoring'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_CONTACT = 'phone, times, may_leave_message under the data key; deleted on withdrawal'
NEW_CONTACT = ('safe contact under the data key, as referrals before 0004_mentoring kept it; '
               'moved under the records key (safe_contact_kept) when next touched')


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'concern_transitions',
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('concern_id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False,
                  comment='the state entered'),
        sa.Column('by_subject', sa.String(length=200), nullable=False,
                  comment='token subject of who acted'),
        sa.Column('by_org', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('note_sealed', sa.LargeBinary(), nullable=True,
                  comment='a short note, records key'),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_concern_transitions')),
        sa.UniqueConstraint('concern_id', 'status',
                            name=op.f('uq_concern_transitions_concern_id')))
    op.create_index(op.f('ix_concern_transitions_concern_id'), 'concern_transitions',
                    ['concern_id'], unique=False)
    op.create_table(
        'marac_referrals',
        sa.Column('referral_id', sa.String(length=40), nullable=False,
                  comment="screening's MARAC referral (marac-referral-required)"),
        sa.Column('subject_id', sa.String(length=40), nullable=True),
        sa.Column('safeguarding_pseudonym', sa.String(length=100), nullable=True,
                  comment='keyed pseudonym of the NHS number: links across re-registration'),
        sa.Column('raised_on', sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint('referral_id', name=op.f('pk_marac_referrals')))
    op.create_index(op.f('ix_marac_referrals_subject_id'), 'marac_referrals', ['subject_id'],
                    unique=False)
    op.create_index(op.f('ix_marac_referrals_safeguarding_pseudonym'), 'marac_referrals',
                    ['safeguarding_pseudonym'], unique=False)
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.alter_column('safe_contact_sealed', existing_type=sa.LargeBinary(),
                              existing_nullable=True, comment=NEW_CONTACT,
                              existing_comment=OLD_CONTACT)
        batch_op.add_column(sa.Column(
            'safe_contact_kept', sa.LargeBinary(), nullable=True,
            comment='safe contact (SafeContact) under the records key: a safeguarding record, '
                    'kept through withdrawal and erasure'))
        batch_op.add_column(sa.Column(
            'safe_contact_org', sa.String(length=64), nullable=True,
            comment="whose copy the safe contact is (the organisation that last gave it); "
                    "null: the referrer's, as given with the referral"))
    with op.batch_alter_table('safeguarding_concerns', schema=None) as batch_op:
        batch_op.alter_column('match_id', existing_type=sa.String(length=40), nullable=True,
                              comment='the match it arose in; null for a concern from any '
                                      'other contact')
        batch_op.alter_column('org', existing_type=sa.String(length=64),
                              existing_nullable=False,
                              comment='the organisation that raised it')
        batch_op.alter_column('status', existing_type=sa.String(length=10),
                              type_=sa.String(length=20), existing_nullable=False,
                              comment='open, acknowledged, actioned or closed (only forward)',
                              existing_comment='open or closed')
        batch_op.add_column(sa.Column('referral_id', sa.String(length=40), nullable=True,
                                      comment='the mentoring referral, if any'))
        batch_op.add_column(sa.Column(
            'raised_at', sa.DateTime(timezone=True), nullable=True,
            comment='when it reached the queue; null for concerns raised before '
                    '0004_mentoring'))
        batch_op.add_column(sa.Column(
            'raised_by', sa.String(length=200), nullable=True,
            comment='the token subject of the member of staff who raised it'))
        batch_op.add_column(sa.Column('safe_contact_sealed', sa.LargeBinary(), nullable=True,
                                      comment='safe contact (SafeContact) under the records '
                                              'key'))
        batch_op.add_column(sa.Column(
            'safe_contact_org', sa.String(length=64), nullable=True,
            comment='whose copy the safe contact is (the organisation that gave it)'))
        batch_op.add_column(sa.Column(
            'repeat', sa.Boolean(), nullable=False, server_default=sa.false(),
            comment='a MARAC referral for the person in the 12 months before (SafeLives)'))
    with op.batch_alter_table('safeguarding_concerns', schema=None) as batch_op:
        batch_op.alter_column('repeat', existing_type=sa.Boolean(), server_default=None,
                              existing_nullable=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('safeguarding_concerns', schema=None) as batch_op:
        batch_op.drop_column('repeat')
        batch_op.drop_column('safe_contact_org')
        batch_op.drop_column('safe_contact_sealed')
        batch_op.drop_column('raised_by')
        batch_op.drop_column('raised_at')
        batch_op.drop_column('referral_id')
        batch_op.alter_column('status', existing_type=sa.String(length=20),
                              type_=sa.String(length=10), existing_nullable=False,
                              comment='open or closed',
                              existing_comment='open, acknowledged, actioned or closed (only '
                                               'forward)')
        batch_op.alter_column('org', existing_type=sa.String(length=64),
                              existing_nullable=False, comment=None,
                              existing_comment='the organisation that raised it')
        batch_op.alter_column('match_id', existing_type=sa.String(length=40), nullable=False,
                              comment=None)
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_column('safe_contact_org')
        batch_op.drop_column('safe_contact_kept')
        batch_op.alter_column('safe_contact_sealed', existing_type=sa.LargeBinary(),
                              existing_nullable=True, comment=OLD_CONTACT,
                              existing_comment=NEW_CONTACT)
    op.drop_index(op.f('ix_marac_referrals_safeguarding_pseudonym'),
                  table_name='marac_referrals')
    op.drop_index(op.f('ix_marac_referrals_subject_id'), table_name='marac_referrals')
    op.drop_table('marac_referrals')
    op.drop_index(op.f('ix_concern_transitions_concern_id'), table_name='concern_transitions')
    op.drop_table('concern_transitions')
