"""The reporting read model: per-person contributions and the released snapshots."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, Integer, String, Table, Text, false, text
from sqlalchemy.orm import Session

from shared.db import SequenceId, UtcDateTime, service_metadata

metadata = service_metadata()
MEASURE_LENGTH = 100
"""Room for every measure's name, a configured component's code (60) with its prefix too."""

contributions = Table(
    "contributions", metadata,
    Column("id", SequenceId, primary_key=True, autoincrement=True),
    Column("subject_id", String(40), nullable=False, index=True),
    Column("anonymous", Boolean, nullable=False, server_default=false(),
           comment="about nobody (an offer of mentoring, counted as itself): no consent to "
                   "check, so it counts under opt-in too"),
    Column("source_event", String(400), nullable=False, index=True),
    Column("measure", String(MEASURE_LENGTH), nullable=False),
    Column("value", Integer, nullable=False),
    Column("occurred_on", Date, nullable=False, comment="the event's own date"),
    Column("month", String(7), nullable=False),
    Column("org", String(64), nullable=False),
    Column("team", String(100), nullable=False),
    Column("borough", String(100), nullable=False),
    Column("gender", String(20), nullable=False),
    Column("age_band", String(10), nullable=False),
    Column("referred_by", String(64), nullable=False, server_default="unknown",
           comment="the referring organisation (mentoring referrals)"),
    Column("episode", String(40), nullable=True, comment="the referral a mentoring event is in"),
    Column("match_id", String(40), nullable=True, comment="the match a mentoring event is in"),
)

releases = Table(
    "releases", metadata,
    Column("release_id", SequenceId, primary_key=True, autoincrement=True),
    Column("released_at", UtcDateTime(), nullable=False, index=True),
    Column("cells", Text, nullable=False,
           comment="each row's figures as last published (unrounded; only controlled leave)"),
    Column("read_model", String(200), nullable=True,
           comment="what the read model held when the release was made (counts, not people)"),
)

published_rows = Table(
    "published_rows", metadata,
    Column("row_key", String(300), primary_key=True,
           comment="table, grouping, group and period of one published row"),
    Column("state", Text, nullable=False,
           comment="who was in each figure when it was last published (hashed references)"),
    comment="the release rule's memory: a figure changes only after K people moved in it",
)

evaluation_consents = Table(
    "evaluation_consents", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("state", String(10), nullable=False, comment="granted or withdrawn"),
    Column("erased", Boolean, nullable=False, default=False),
    Column("changed_at", UtcDateTime(), nullable=False),
    comment="evaluation consent per person: who may count (opt-out or opt-in)",
)

research_consents = Table(
    "research_consents", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("org", String(64), primary_key=True,
           comment="the holder organisation: its research consent covers its own records"),
    Column("state", String(10), nullable=False, comment="granted or withdrawn"),
    Column("changed_at", UtcDateTime(), nullable=False),
    comment="research consent per person (taking part in the study's data collection), "
            "apart from consent to the service: who is in the research extract and figures",
)

research_extracts = Table(
    "research_extracts", metadata,
    Column("extract_id", String(40), primary_key=True),
    Column("taken_at", UtcDateTime(), nullable=False),
    Column("org", String(64), nullable=False),
    Column("taken_by", String(200), nullable=False, comment="the researcher's token subject"),
    Column("kind", String(20), nullable=False, comment="extract or figures"),
    Column("people", Integer, nullable=False),
    Column("digest", String(64), nullable=False,
           comment="SHA-256 of what was handed over, to prove later what it was"),
    comment="every research extract and research figures taken: who, when, how many people",
)

team_training = Table(
    "team_training", metadata,
    Column("org", String(64), primary_key=True),
    Column("team", String(100), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("staff", Integer, nullable=False),
    Column("trained", Integer, nullable=False),
    comment="each team's newest staff training record (about staff, not about anyone in the "
            "programme): coverage is read against it",
)

dashboard_sessions = Table(
    "dashboard_sessions", metadata,
    Column("id_hash", String(64), primary_key=True,
           comment="SHA-256 (hex) of the opaque session id; the id itself is never stored"),
    Column("org", String(64), nullable=False),
    Column("subject", String(200), nullable=False, comment="the signed-in token's subject"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    comment="dashboard sign-ins: each grants ops-viewer only, until it expires or is revoked",
)

RULE_MEMORY_LOCK = 0x5065_6572
"""The PostgreSQL advisory lock held by whoever writes the release rule's memory."""


def lock_rule_memory(session: Session) -> None:
    """Hold the rule's memory for the rest of the transaction: a release being stored and a
    withdrawal forgetting someone in it never interleave (SQLite: a write transaction already
    holds the database's write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RULE_MEMORY_LOCK})
