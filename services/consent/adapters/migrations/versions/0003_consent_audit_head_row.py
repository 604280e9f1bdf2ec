"""audit head row always present, so concurrent first appends serialise on it

Revision ID: 0003_consent
Revises: 0002_consent
Create Date: 2026-12-01 07:10:00.000000

The audit chain is keyed from this revision on (HMAC-SHA256 under PEERLINK_CONSENT_AUDIT_KEY).
Entries written by the former unkeyed SHA-256 chain are not converted (converting them would
vouch for whatever the database holds): verification reports the first one as carrying an
unkeyed hash. Development databases from before are re-created (delete var/consent.db, or
drop and re-migrate the database).
"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0003_consent'
down_revision: Union[str, Sequence[str], None] = '0002_consent'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

GENESIS = "0" * 64


def upgrade() -> None:
    """Seed the head row (seq 0, the genesis hash) unless entries already made one."""
    op.execute(f"""
        INSERT INTO audit_head (id, seq, hash)
        SELECT 1, 0, '{GENESIS}' WHERE NOT EXISTS (SELECT 1 FROM audit_head WHERE id = 1)
    """)


def downgrade() -> None:
    """Remove the seeded head row if nothing was appended after it."""
    op.execute("DELETE FROM audit_head WHERE id = 1 AND seq = 0")
