"""The mentoring service's tables."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

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
           comment="safe contact under the data key, as referrals before 0004_mentoring kept "
                   "it; moved under the records key (safe_contact_kept) when next touched"),
    Column("safe_contact_kept", LargeBinary, nullable=True,
           comment="safe contact (SafeContact) under the records key: a safeguarding record, "
                   "kept through withdrawal and erasure"),
    Column("safe_contact_org", String(64), nullable=True,
           comment="whose copy the safe contact is (the organisation that last gave it); "
                   "null: the referrer's, as given with the referral"),
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
    Column("components", String(1900), nullable=True,
           comment="comma-separated codes of the intervention's components it covered"),
)

supervisions = Table(
    "supervisions", metadata,
    Column("supervision_id", String(40), primary_key=True),
    Column("mentor_id", String(40), nullable=False, index=True),
    Column("held_on", Date, nullable=False),
    Column("covered", String(1900), nullable=False,
           comment="comma-separated codes of the supervision topics it covered"),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

mentee_feedback = Table(
    "mentee_feedback", metadata,
    Column("match_id", String(40), primary_key=True, comment="one per mentoring, at its end"),
    Column("given_on", Date, nullable=False),
    Column("helped", Integer, nullable=False, comment="1 (not at all) to 5 (a lot)"),
    Column("made_worse", String(10), nullable=False, comment="yes, no or unsure"),
    Column("comment_sealed", LargeBinary, nullable=True, comment="comment under the data key"),
)

adverse_events = Table(
    "adverse_events", metadata,
    Column("adverse_event_id", String(40), primary_key=True),
    Column("match_id", String(40), nullable=False, index=True),
    Column("org", String(64), nullable=False, comment="the mentor's organisation"),
    Column("occurred_on", Date, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("serious", Boolean, nullable=False),
    Column("relatedness", String(20), nullable=False),
    Column("details_sealed", LargeBinary, nullable=True, comment="details under the data key"),
    Column("concern_id", String(40), nullable=True,
           comment="the safeguarding concern a serious one raised"),
    Column("recorded_by_org", String(64), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

offers = Table(
    "offers", metadata,
    Column("offer_id", String(40), primary_key=True),
    Column("org", String(64), nullable=False, index=True),
    Column("team", String(100), nullable=False),
    Column("gender", String(20), nullable=False),
    Column("age_band", String(10), nullable=False),
    Column("offered_on", Date, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("decline_reason", String(40), nullable=True),
    Column("recorded_by", String(200), nullable=False,
           comment="the token subject of the member of staff who recorded it"),
    Column("recorded_at", UtcDateTime(), nullable=False),
    comment="offers of peer mentoring, without personal data (no subject)",
)

safeguarding_concerns = Table(
    "safeguarding_concerns", metadata,
    Column("concern_id", String(40), primary_key=True),
    Column("subject_id", String(40), nullable=False, index=True,
           comment="kept on erasure: safeguarding rests on its own lawful basis"),
    Column("match_id", String(40), nullable=True,
           comment="the match it arose in; null for a concern from any other contact"),
    Column("referral_id", String(40), nullable=True, comment="the mentoring referral, if any"),
    Column("session_id", String(40), nullable=True),
    Column("org", String(64), nullable=False, comment="the organisation that raised it"),
    Column("raised_on", Date, nullable=False),
    Column("raised_at", UtcDateTime(), nullable=True,
           comment="when it reached the queue; null for concerns raised before 0004_mentoring"),
    Column("raised_by", String(200), nullable=True,
           comment="the token subject of the member of staff who raised it"),
    Column("details_sealed", LargeBinary, nullable=True),
    Column("safe_contact_sealed", LargeBinary, nullable=True,
           comment="safe contact (SafeContact) under the records key"),
    Column("safe_contact_org", String(64), nullable=True,
           comment="whose copy the safe contact is (the organisation that gave it)"),
    Column("repeat", Boolean, nullable=False, default=False,
           comment="a MARAC referral for the person in the 12 months before (SafeLives)"),
    Column("status", String(20), nullable=False, index=True,
           comment="open, acknowledged, actioned or closed (only forward)"),
    Column("flagged_for_dpo_at", UtcDateTime(), nullable=True),
)

concern_transitions = Table(
    "concern_transitions", metadata,
    Column("seq", SequenceId, primary_key=True, autoincrement=True),
    Column("concern_id", String(40), nullable=False, index=True),
    Column("status", String(20), nullable=False, comment="the state entered"),
    Column("by_subject", String(200), nullable=False, comment="token subject of who acted"),
    Column("by_org", String(64), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("note_sealed", LargeBinary, nullable=True, comment="a short note, records key"),
    UniqueConstraint("concern_id", "status"),
)

marac_referrals = Table(
    "marac_referrals", metadata,
    Column("referral_id", String(40), primary_key=True,
           comment="screening's MARAC referral (marac-referral-required)"),
    Column("subject_id", String(40), nullable=True, index=True),
    Column("safeguarding_pseudonym", String(100), nullable=True, index=True,
           comment="keyed pseudonym of the NHS number: links across re-registration"),
    Column("raised_on", Date, nullable=False),
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
