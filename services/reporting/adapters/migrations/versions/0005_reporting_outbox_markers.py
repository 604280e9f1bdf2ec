"""outbox markers: where the outbox relay's marker record sits on each topic

Revision ID: 0005_reporting
Revises: 0004_reporting
Create Date: 2026-12-02 09:00:00

The relay reads each marker back from the broker; when the broker no longer holds it (the
local broker forgets its topics when it stops), the outbox's events for that topic are
published again. Empty after upgrading: the relay puts a marker on each topic it has sent to.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005_reporting'
down_revision: Union[str, Sequence[str], None] = '0004_reporting'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'outbox_marker',
        sa.Column('topic', sa.String(length=200), nullable=False),
        sa.Column('kafka_partition', sa.Integer(), nullable=False),
        sa.Column('kafka_offset', sa.BigInteger(), nullable=False),
        sa.Column('epoch', sa.String(length=64), nullable=False,
                  comment="the marker record's event id"),
        sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('topic', name=op.f('pk_outbox_marker')),
        comment="the outbox relay's marker record on each topic: while the broker still holds "
                "it, it holds the events marked sent to that topic",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('outbox_marker')
