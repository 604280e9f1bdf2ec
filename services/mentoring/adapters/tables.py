"""The mentoring service's tables."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Float, Integer, LargeBinary, String, Table

from shared.db import SequenceId, UtcDateTime, service_metadata

metadata = service_metadata()

mentors = Table(
    "mentors", metadata,
    Column("mentor_id", String(40), primary_key=True),
    Column("org", String(64), nullable=False, index=True),
    Column("display_name", String(100), nullable=False,
           comment="the mentor's chosen name; never in events"),
    Column("gender", String(20), nullable=False),
    Column("languages", String(200), nullable=False, comment="comma-separated"),
    Column("borough", String(100), nullable=False),
    Column("modes", String(50), nullable=False, comment="comma-separated"),
    Column("capacity", Integer, nullable=False),
    Column("training_completed_on", Date, nullable=True),
    Column("check_level", String(100), nullable=True),
    Column("check_completed_on", Date, nullable=True),
    Column("last_supervision_on", Date, nullable=True),
    Column("status", String(20), nullable=False),
    Column("last_matched_at", UtcDateTime(), nullable=True),
    Column("registered_at", UtcDateTime(), nullable=False),
)

referrals = Table(
    "referrals", metadata,
    Column("seq", SequenceId, primary_key=True, autoincrement=True, comment="referral order"),
    Column("referral_id", String(40), nullable=False, unique=True),
    Column("subject_id", String(40), nullable=True, index=True, comment="null once erased"),
    Column("referred_by_org", String(64), nullable=False, index=True),
    Column("to_org", String(64), nullable=True, index=True,
           comment="the receiving DVA partner; null only for referrals made before it was "
                   "recorded and never matched"),
    Column("referred_on", Date, nullable=False),
    Column("mentor_gender", String(20), nullable=False),
    Column("language", String(35), nullable=True),
    Column("mode", String(20), nullable=True),
    Column("borough", String(100), nullable=True),
    Column("safe_contact_sealed", LargeBinary, nullable=True,
           comment="phone, times, may_leave_message under the data key; deleted on withdrawal"),
    Column("status", String(20), nullable=False, index=True,
           comment="referred, waitlisted, matched, cancelled or ended"),
    Column("unmet_constraints", String(300), nullable=True),
    Column("waitlisted", Boolean, nullable=False, default=False),
    Column("sharing_withdrawn", Boolean, nullable=False, default=False,
           comment="the referrer withdrew partner-sharing naming to_org: the receiving "
                   "organisation loses the details"),
)

matches = Table(
    "matches", metadata,
    Column("match_id", String(40), primary_key=True),
    Column("referral_id", String(40), nullable=False, unique=True),
    Column("mentor_id", String(40), nullable=False, index=True),
    Column("org", String(64), nullable=False, comment="the mentor's organisation"),
    Column("matched_on", Date, nullable=False),
    Column("status", String(10), nullable=False, comment="active or ended"),
    Column("ended_on", Date, nullable=True),
    Column("planned", Boolean, nullable=True),
    Column("end_reason_sealed", LargeBinary, nullable=True),
)

mentoring_sessions = Table(
    "mentoring_sessions", metadata,
    Column("session_id", String(40), primary_key=True),
    Column("match_id", String(40), nullable=False, index=True),
    Column("held_on", Date, nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("mode", String(20), nullable=False),
    Column("attendance", String(30), nullable=False),
    Column("safeguarding_concern", Boolean, nullable=False),
    Column("recorded_by_org", String(64), nullable=False),
)

safeguarding_concerns = Table(
    "safeguarding_concerns", metadata,
    Column("concern_id", String(40), primary_key=True),
    Column("subject_id", String(40), nullable=False, index=True,
           comment="kept on erasure: safeguarding rests on its own lawful basis"),
    Column("match_id", String(40), nullable=False),
    Column("session_id", String(40), nullable=True),
    Column("org", String(64), nullable=False),
    Column("raised_on", Date, nullable=False),
    Column("details_sealed", LargeBinary, nullable=True),
    Column("status", String(10), nullable=False, index=True, comment="open or closed"),
    Column("flagged_for_dpo_at", UtcDateTime(), nullable=True),
)

outcomes = Table(
    "outcomes", metadata,
    Column("outcome_id", String(40), primary_key=True),
    Column("match_id", String(40), nullable=False, index=True),
    Column("timepoint", String(10), nullable=False),
    Column("instrument", String(10), nullable=False),
    Column("items", String(60), nullable=False, comment="comma-separated item scores"),
    Column("raw_score", Integer, nullable=False),
    Column("metric_score", Float, nullable=True),
    Column("recorded_on", Date, nullable=False),
)
