"""people, not events: event dates, episodes and the release rule's memory

Contributions gain the event's own date, the referring organisation and, for mentoring, the
episode (referral) and match they belong to; ``published_rows`` remembers who was in each
figure when it was last published. Contributions stored before this revision lack the episode
links and are cleared with the old releases: run ``peerlink reporting rebuild`` after upgrading
(docs/operations.md, "Rebuilding reporting").

Revision ID: 0004_reporting
Revises: 0003_reporting
Create Date: 2026-12-01 14:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004_reporting'
down_revision: Union[str, Sequence[str], None] = '0003_reporting'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("DELETE FROM contributions")
    op.execute("DELETE FROM releases")
    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('occurred_on', sa.Date(), nullable=False,
                                      comment="the event's own date"))
        batch_op.add_column(sa.Column('referred_by', sa.String(length=64), nullable=False,
                                      server_default='unknown',
                                      comment='the referring organisation (mentoring referrals)'))
        batch_op.add_column(sa.Column('episode', sa.String(length=40), nullable=True,
                                      comment='the referral a mentoring event is in'))
        batch_op.add_column(sa.Column('match_id', sa.String(length=40), nullable=True,
                                      comment='the match a mentoring event is in'))
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_model', sa.String(length=200), nullable=True,
                                      comment='what the read model held when the release was '
                                              'made (counts, not people)'))
        batch_op.alter_column('cells', existing_type=sa.Text(), existing_nullable=False,
                              comment="each row's figures as last published (unrounded; only "
                                      "controlled leave)",
                              existing_comment='unrounded aggregate cells at release time; '
                                               'only controlled figures leave')
    op.create_table('published_rows',
    sa.Column('row_key', sa.String(length=300), nullable=False, comment='table, grouping, group and period of one published row'),
    sa.Column('state', sa.Text(), nullable=False, comment='who was in each figure when it was last published (hashed references)'),
    sa.PrimaryKeyConstraint('row_key', name=op.f('pk_published_rows')),
    comment="the release rule's memory: a figure changes only after K people moved in it"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('published_rows')
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_column('read_model')
    op.execute("DELETE FROM contributions")
    op.execute("DELETE FROM releases")
    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.drop_column('match_id')
        batch_op.drop_column('episode')
        batch_op.drop_column('referred_by')
        batch_op.drop_column('occurred_on')
