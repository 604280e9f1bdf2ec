"""relationships have a basis; partner-sharing changes name their recipient

Revision ID: 0003_consent
Revises: 0002_consent
Create Date: 2026-12-01 07:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003_consent'
down_revision: Union[str, Sequence[str], None] = '0002_consent'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('subject_orgs') as batch:
        batch.create_table_comment('organisations with a relationship with the person; each '
                                   'records and sees only its own consents')
        batch.add_column(sa.Column('basis', sa.String(length=20), nullable=False,
                                   server_default='registered',
                                   comment='registered (own patient or client) or referral '
                                           '(received one)'))
        batch.add_column(sa.Column('referred_by', sa.String(length=64), nullable=True,
                                   comment='for a referral: the organisation that made it'))
    with op.batch_alter_table('consent_changes') as batch:
        batch.add_column(sa.Column('recipient', sa.String(length=64), nullable=True,
                                   comment="partner-sharing only: the organisation the "
                                           "holder's records go to"))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('consent_changes') as batch:
        batch.drop_column('recipient')
    with op.batch_alter_table('subject_orgs') as batch:
        batch.drop_column('referred_by')
        batch.drop_column('basis')
        batch.create_table_comment('organisations that registered the person, and so may '
                                   'act on their consent')
