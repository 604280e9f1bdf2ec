"""research consents and the log of research extracts

Revision ID: 0008_reporting
Revises: 0007_reporting
Create Date: 2026-12-03 14:00:00

Research (taking part in the study's data collection) is consented apart from the service:
reporting keeps each person's research consent per holder organisation (each covers that
organisation's records), and logs every research extract and research
figures taken (who, when, how many people, a digest of what was handed over).
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008_reporting'
down_revision: Union[str, Sequence[str], None] = '0007_reporting'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'research_consents',
        sa.Column('subject_id', sa.String(length=40), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False,
                  comment="the holder organisation: its research consent covers its own "
                          "records"),
        sa.Column('state', sa.String(length=10), nullable=False, comment="granted or withdrawn"),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('subject_id', 'org', name=op.f('pk_research_consents')),
        comment="research consent per person (taking part in the study's data collection), "
                "apart from consent to the service: who is in the research extract and figures")
    op.create_table(
        'research_extracts',
        sa.Column('extract_id', sa.String(length=40), nullable=False),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('org', sa.String(length=64), nullable=False),
        sa.Column('taken_by', sa.String(length=200), nullable=False,
                  comment="the researcher's token subject"),
        sa.Column('kind', sa.String(length=20), nullable=False,
                  comment="extract or figures"),
        sa.Column('people', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False,
                  comment="SHA-256 of what was handed over, to prove later what it was"),
        sa.PrimaryKeyConstraint('extract_id', name=op.f('pk_research_extracts')),
        comment="every research extract and research figures taken: who, when, how many people")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('research_extracts')
    op.drop_table('research_consents')
