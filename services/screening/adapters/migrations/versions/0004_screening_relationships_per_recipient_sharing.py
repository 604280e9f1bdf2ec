"""relationships, partner sharing per holder and recipient, MARAC raised_by

Revision ID: 0004_screening
Revises: 0003_screening
Create Date: 2026-12-01 07:10:00

Partner-sharing becomes per (subject, holder, recipient): the old per-subject rows said "some
consent to share with partners" without saying whose records or with whom, so they cannot be
carried over. They are dropped (fail closed: nothing is shared until consent says with whom);
replaying consent.events rebuilds what the consent service has published.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004_screening'
down_revision: Union[str, Sequence[str], None] = '0003_screening'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('relationships',
    sa.Column('subject_id', sa.String(length=40), nullable=False),
    sa.Column('org', sa.String(length=64), nullable=False),
    sa.Column('basis', sa.String(length=20), nullable=False, comment='registered or referral (the first)'),
    sa.Column('established_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('subject_id', 'org', name=op.f('pk_relationships')),
    comment='which organisations have a relationship with a person (relationship-established)'
    )
    op.drop_table('partner_sharing')
    op.create_table('partner_sharing',
    sa.Column('subject_id', sa.String(length=40), nullable=False),
    sa.Column('holder_org', sa.String(length=64), nullable=False, comment='the organisation that holds the records and recorded the consent'),
    sa.Column('recipient_org', sa.String(length=64), nullable=False, comment="the organisation the holder's records may be shared with"),
    sa.Column('state', sa.String(length=10), nullable=False, comment='granted or withdrawn'),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('subject_id', 'holder_org', 'recipient_org', name=op.f('pk_partner_sharing')),
    comment='partner-sharing consent per holder and recipient, as consent published it'
    )
    with op.batch_alter_table('marac_referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raised_by', sa.String(length=200), nullable=True, comment='the caller (token subject) who raised it; null for referrals before 0004'))


def downgrade() -> None:
    """Downgrade schema (per-recipient sharing cannot be folded back: it is dropped)."""
    with op.batch_alter_table('marac_referrals', schema=None) as batch_op:
        batch_op.drop_column('raised_by')
    op.drop_table('partner_sharing')
    op.create_table('partner_sharing',
    sa.Column('subject_id', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False, comment='granted or withdrawn'),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('subject_id', name=op.f('pk_partner_sharing')),
    comment='partner-sharing consent as the consent service published it'
    )
    op.drop_table('relationships')
