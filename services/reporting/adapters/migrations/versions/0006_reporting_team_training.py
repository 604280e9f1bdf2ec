"""team training: each team's newest record of staff trained in routine enquiry

Revision ID: 0006_reporting
Revises: 0005_reporting
Create Date: 2026-12-03 09:00:00

About staff, not about anyone in the programme: coverage by team is read against it.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006_reporting'
down_revision: Union[str, Sequence[str], None] = '0005_reporting'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'team_training',
        sa.Column('org', sa.String(length=64), nullable=False),
        sa.Column('team', sa.String(length=100), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('staff', sa.Integer(), nullable=False),
        sa.Column('trained', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('org', 'team', name=op.f('pk_team_training')),
        comment="each team's newest staff training record (about staff, not about anyone in "
                "the programme): coverage is read against it",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('team_training')
