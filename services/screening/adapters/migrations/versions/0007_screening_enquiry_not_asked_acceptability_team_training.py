"""the study's routine enquiry: why an enquiry was not made, whether being asked was all
right, and staff trained per team

Revision ID: 0007_screening
Revises: 0006_screening
Create Date: 2026-12-03 09:00:00

Existing screenings keep null in the new columns: their enquiries were made, or not made
because it was not safe, and nobody was asked the acceptability item.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0007_screening'
down_revision: Union[str, Sequence[str], None] = '0006_screening'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('screenings') as batch:
        batch.add_column(sa.Column(
            'not_asked_reason', sa.String(length=20), nullable=True,
            comment="why an enquiry that was due was not made (outcome not-asked)"))
        batch.add_column(sa.Column(
            'acceptable', sa.String(length=10), nullable=True,
            comment='the person\'s answer to "Was it all right to be asked?"'))
        batch.add_column(sa.Column(
            'comfort', sa.Integer(), nullable=True,
            comment="how comfortable being asked, 1 to 5"))
    op.create_table(
        'team_training',
        sa.Column('record_id', sa.String(length=40), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False),
        sa.Column('team', sa.String(length=100), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('staff', sa.Integer(), nullable=False),
        sa.Column('trained', sa.Integer(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('record_id', name=op.f('pk_team_training')),
        comment="staff trained in routine enquiry per team, as of a date (about staff only)",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('team_training')
    with op.batch_alter_table('screenings') as batch:
        batch.drop_column('comfort')
        batch.drop_column('acceptable')
        batch.drop_column('not_asked_reason')
