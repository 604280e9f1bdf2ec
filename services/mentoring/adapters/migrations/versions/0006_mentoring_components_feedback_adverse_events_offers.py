"""the study's mentoring records: session components, supervision topics, mentee feedback,
adverse events, offers of mentoring

Revision ID: 0006_mentoring
Revises: 0005_mentoring
Create Date: 2026-12-03 09:00:00

Sessions logged before keep null components (they were never recorded).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006_mentoring'
down_revision: Union[str, Sequence[str], None] = '0005_mentoring'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('mentoring_sessions') as batch:
        batch.add_column(sa.Column(
            'components', sa.String(length=1900), nullable=True,
            comment="comma-separated codes of the intervention's components it covered"))
    op.create_table(
        'supervisions',
        sa.Column('supervision_id', sa.String(length=40), nullable=False),
        sa.Column('mentor_id', sa.String(length=40), nullable=False),
        sa.Column('held_on', sa.Date(), nullable=False),
        sa.Column('covered', sa.String(length=1900), nullable=False,
                  comment="comma-separated codes of the supervision topics it covered"),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('supervision_id', name=op.f('pk_supervisions')),
    )
    op.create_index(op.f('ix_supervisions_mentor_id'), 'supervisions', ['mentor_id'])
    op.create_table(
        'mentee_feedback',
        sa.Column('match_id', sa.String(length=40), nullable=False,
                  comment="one per mentoring, at its end"),
        sa.Column('given_on', sa.Date(), nullable=False),
        sa.Column('helped', sa.Integer(), nullable=False, comment="1 (not at all) to 5 (a lot)"),
        sa.Column('made_worse', sa.String(length=10), nullable=False,
                  comment="yes, no or unsure"),
        sa.Column('comment_sealed', sa.LargeBinary(), nullable=True,
                  comment="comment under the data key"),
        sa.PrimaryKeyConstraint('match_id', name=op.f('pk_mentee_feedback')),
    )
    op.create_table(
        'adverse_events',
        sa.Column('adverse_event_id', sa.String(length=40), nullable=False),
        sa.Column('match_id', sa.String(length=40), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False,
                  comment="the mentor's organisation"),
        sa.Column('occurred_on', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('serious', sa.Boolean(), nullable=False),
        sa.Column('relatedness', sa.String(length=20), nullable=False),
        sa.Column('details_sealed', sa.LargeBinary(), nullable=True,
                  comment="details under the data key"),
        sa.Column('concern_id', sa.String(length=40), nullable=True,
                  comment="the safeguarding concern a serious one raised"),
        sa.Column('recorded_by_org', sa.String(length=64), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('adverse_event_id', name=op.f('pk_adverse_events')),
    )
    op.create_index(op.f('ix_adverse_events_match_id'), 'adverse_events', ['match_id'])
    op.create_table(
        'offers',
        sa.Column('offer_id', sa.String(length=40), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False),
        sa.Column('team', sa.String(length=100), nullable=False),
        sa.Column('gender', sa.String(length=20), nullable=False),
        sa.Column('age_band', sa.String(length=10), nullable=False),
        sa.Column('offered_on', sa.Date(), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('decline_reason', sa.String(length=40), nullable=True),
        sa.Column('recorded_by', sa.String(length=200), nullable=False,
                  comment="the token subject of the member of staff who recorded it"),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('offer_id', name=op.f('pk_offers')),
        comment="offers of peer mentoring, without personal data (no subject)",
    )
    op.create_index(op.f('ix_offers_org'), 'offers', ['org'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_offers_org'), table_name='offers')
    op.drop_table('offers')
    op.drop_index(op.f('ix_adverse_events_match_id'), table_name='adverse_events')
    op.drop_table('adverse_events')
    op.drop_table('mentee_feedback')
    op.drop_index(op.f('ix_supervisions_mentor_id'), table_name='supervisions')
    op.drop_table('supervisions')
    with op.batch_alter_table('mentoring_sessions') as batch:
        batch.drop_column('components')
