"""referrals name the receiving organisation

Revision ID: 0003_mentoring
Revises: 0002_mentoring
Create Date: 2026-12-01 07:15:00.000000

Referrals made before this revision that were matched take the matched mentor's organisation
as their receiving organisation (the only one that ever acted on them); unmatched ones keep
none and are in no organisation's intake.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003_mentoring'
down_revision: Union[str, Sequence[str], None] = '0002_mentoring'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'to_org', sa.String(length=64), nullable=True,
            comment='the receiving DVA partner; null only for referrals made before it was '
                    'recorded and never matched'))
        batch_op.alter_column(
            'sharing_withdrawn', existing_type=sa.Boolean(), existing_nullable=False,
            comment='the referrer withdrew partner-sharing naming to_org: the receiving '
                    'organisation loses the details',
            existing_comment='partner-sharing withdrawn: partner organisations lose the details')
        batch_op.create_index(batch_op.f('ix_referrals_to_org'), ['to_org'], unique=False)
    op.execute("UPDATE referrals SET to_org = (SELECT matches.org FROM matches "
               "WHERE matches.referral_id = referrals.referral_id) WHERE to_org IS NULL")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referrals_to_org'))
        batch_op.alter_column(
            'sharing_withdrawn', existing_type=sa.Boolean(), existing_nullable=False,
            comment='partner-sharing withdrawn: partner organisations lose the details',
            existing_comment='the referrer withdrew partner-sharing naming to_org: the '
                             'receiving organisation loses the details')
        batch_op.drop_column('to_org')
