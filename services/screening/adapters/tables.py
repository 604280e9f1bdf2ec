"""The screening service's tables."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Integer, LargeBinary, String, Table

from shared.db import UtcDateTime, service_metadata

metadata = service_metadata()

screenings = Table(
    "screenings", metadata,
    Column("screening_id", String(40), primary_key=True),
    Column("subject_id", String(40), nullable=True, index=True,
           comment="null once the person is erased: the row stays de-identified"),
    Column("org", String(64), nullable=False),
    Column("team", String(100), nullable=False),
    Column("borough", String(100), nullable=False),
    Column("gender", String(20), nullable=False),
    Column("age_band", String(10), nullable=False),
    Column("asked_on", Date, nullable=False),
    Column("asked_by_role", String(100), nullable=False),
    Column("training_level", Integer, nullable=False),
    Column("private", Boolean, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("hark_humiliated", Boolean, nullable=True),
    Column("hark_afraid", Boolean, nullable=True),
    Column("hark_raped", Boolean, nullable=True),
    Column("hark_kicked", Boolean, nullable=True),
    Column("hark_score", Integer, nullable=True),
    Column("current_abuse", Boolean, nullable=True),
    Column("past_abuse", String(10), nullable=True),
    Column("disclosed", Boolean, nullable=True),
    Column("abuser_relationship", String(20), nullable=True),
    Column("affected_mental_health", String(10), nullable=True),
    Column("notes_sealed", LargeBinary, nullable=True, comment="notes under the data key"),
    Column("recorded_by_org", String(64), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

partner_sharing = Table(
    "partner_sharing", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("state", String(10), nullable=False, comment="granted or withdrawn"),
    Column("changed_at", UtcDateTime(), nullable=False),
    comment="partner-sharing consent as the consent service published it",
)
