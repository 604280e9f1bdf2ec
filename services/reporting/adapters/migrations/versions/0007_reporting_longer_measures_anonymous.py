"""contributions: room for longer measure names, and contributions about nobody

Revision ID: 0007_reporting
Revises: 0006_reporting
Create Date: 2026-12-03 10:00:00

A configured component's measure (``component_`` and a code of up to 60 characters) and the
longest reason an offer was declined (``offer_declined_prefers_professional_support``, 43)
did not fit in 40 characters: PostgreSQL refused them. An offer of mentoring is about nobody
(``anonymous``): it counts as itself, with no consent to look up, under opt-in as under
opt-out. Existing contributions are all about someone.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0007_reporting'
down_revision: Union[str, Sequence[str], None] = '0006_reporting'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('contributions') as batch:
        batch.alter_column('measure', existing_type=sa.String(length=40),
                           type_=sa.String(length=100), existing_nullable=False)
        batch.add_column(sa.Column(
            'anonymous', sa.Boolean(), nullable=False, server_default=sa.false(),
            comment="about nobody (an offer of mentoring, counted as itself): no consent to "
                    "check, so it counts under opt-in too"))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('contributions') as batch:
        batch.drop_column('anonymous')
        batch.alter_column('measure', existing_type=sa.String(length=100),
                           type_=sa.String(length=40), existing_nullable=False)
