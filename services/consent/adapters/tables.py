"""The consent service's tables."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from shared.db import SequenceId, UtcDateTime, service_metadata

metadata = service_metadata()

subjects = Table(
    "subjects", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("nhs_lookup", String(64), unique=True, nullable=True,
           comment="HMAC of the NHS number; removed on erasure"),
    Column("nhs_number_sealed", LargeBinary, nullable=True,
           comment="the NHS number under the subject's data key"),
    Column("registered_by_org", String(64), nullable=False),
    Column("registered_at", UtcDateTime(), nullable=False),
    Column("erased_at", UtcDateTime(), nullable=True),
    Column("local_lookup", String(64), unique=True, nullable=True,
           comment="HMAC of (organisation, its local client identifier), for clients "
                   "registered without an NHS number; removed on erasure"),
    Column("safeguarding_pseudonym", String(64), nullable=True, index=True,
           comment="HMAC of the NHS number (or local identifier) under the safeguarding "
                   "pseudonym key; removed on erasure (the safeguarding records keep it)"),
    Column("local_id_sealed", LargeBinary, nullable=True,
           comment="the registering organisation's client identifier under the subject's "
                   "data key (to recompute local_lookup when the master key rotates)"),
)

identity_reconciliations = Table(
    "identity_reconciliations", metadata,
    Column("reconciliation_id", String(40), primary_key=True),
    Column("subject_id", String(40), ForeignKey("subjects.subject_id"), nullable=False,
           index=True, comment="the subject an NHS number was to be linked to"),
    Column("org", String(64), nullable=False, index=True,
           comment="the organisation whose staff asked for the link"),
    Column("reason", String(40), nullable=False,
           comment="nhs-number-unclaimed, nhs-number-held-by-another-subject or "
                   "nhs-number-differs (shown to no one but the DPO)"),
    Column("other_subject_id", String(40), nullable=True,
           comment="the subject that already holds the NHS number (never shown to the "
                   "organisation that asked)"),
    Column("nhs_number_sealed", LargeBinary, nullable=True,
           comment="the NHS number given, under the subject's data key"),
    Column("status", String(20), nullable=False, index=True,
           comment="open, linked, rejected or awaiting-merge"),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("resolution_reason_sealed", LargeBinary, nullable=True,
           comment="the DPO's reason under the subject's data key"),
    comment="every NHS-number link, applied only once the asking organisation's DPO "
            "resolves it (subjects are never merged silently)",
)

safe_contacts = Table(
    "safe_contacts", metadata,
    Column("subject_id", String(40), ForeignKey("subjects.subject_id"), primary_key=True),
    Column("org", String(64), primary_key=True,
           comment="the organisation whose copy this is; no other organisation reads it"),
    Column("safe_contact_sealed", LargeBinary, nullable=False,
           comment="the instructions under the subject's data key"),
    Column("updated_at", UtcDateTime(), nullable=False),
    comment="each organisation's own record of the person's safe-contact instructions",
)

erasure_requests = Table(
    "erasure_requests", metadata,
    Column("erasure_request_id", String(40), primary_key=True),
    Column("subject_id", String(40), ForeignKey("subjects.subject_id"), nullable=False,
           index=True),
    Column("org", String(64), nullable=False, index=True,
           comment="the holding organisation, whose DPO decides"),
    Column("withdrawal_id", String(40), nullable=False,
           comment="the withdrawal filed with the request (erasure implies withdrawal)"),
    Column("status", String(30), nullable=False, index=True,
           comment="awaiting-dpo-decision, refused, in-progress or complete"),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False,
           comment="one month from the request, or up to three with an extension"),
    Column("extended_months", Integer, nullable=True,
           comment="the one extension granted (1 or 2 months), if any"),
    Column("extension_reason_sealed", LargeBinary, nullable=True,
           comment="why it was extended, under consent's records key"),
    Column("decision", String(30), nullable=True,
           comment="approve, approve-except-retained or refuse"),
    Column("decision_reason_sealed", LargeBinary, nullable=True,
           comment="the DPO's reason under consent's records key (the person must be told)"),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("scope", String(20), nullable=True, comment="subject or organisation"),
    Column("retained", String(200), nullable=True,
           comment="record kinds kept under another lawful basis, comma-separated"),
    Column("completed_at", UtcDateTime(), nullable=True),
    comment="Art. 17 requests, decided by the holding organisation's DPO",
)

subject_access_requests = Table(
    "subject_access_requests", metadata,
    Column("request_id", String(40), primary_key=True),
    Column("subject_id", String(40), ForeignKey("subjects.subject_id"), nullable=False,
           index=True),
    Column("org", String(64), nullable=False, index=True),
    Column("status", String(20), nullable=False, index=True, comment="open or complete"),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    comment="Art. 15 requests: the DPO exports everything held, within one month",
)

subject_orgs = Table(
    "subject_orgs", metadata,
    Column("subject_id", String(40), ForeignKey("subjects.subject_id"), primary_key=True),
    Column("org", String(64), primary_key=True),
    Column("basis", String(20), nullable=False, server_default="registered",
           comment="registered (own patient or client) or referral (received one)"),
    Column("referred_by", String(64), nullable=True,
           comment="for a referral: the organisation that made it"),
    Column("established_at", UtcDateTime(), nullable=True,
           comment="when this organisation's relationship began (null before it was kept)"),
    comment="organisations with a relationship with the person; each records and sees only "
            "its own consents",
)

data_keys = Table(
    "data_keys", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True, comment="null once shredded"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("shredded_at", UtcDateTime(), nullable=True),
)

consent_changes = Table(
    "consent_changes", metadata,
    Column("seq", SequenceId, primary_key=True, autoincrement=True),
    Column("change_id", String(40), nullable=False, unique=True),
    Column("subject_id", String(40), ForeignKey("subjects.subject_id"), nullable=False),
    Column("purpose", String(30), nullable=False),
    Column("action", String(10), nullable=False, comment="granted or withdrawn"),
    Column("method", String(20), nullable=False),
    Column("recorded_by", String(200), nullable=True, comment="staff member, not the person"),
    Column("org", String(64), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("withdrawal_id", String(40), nullable=True),
    Column("recipient", String(64), nullable=True,
           comment="partner-sharing only: the organisation the holder's records go to"),
    Index("ix_consent_changes_subject_purpose", "subject_id", "purpose"),
)

withdrawals = Table(
    "withdrawals", metadata,
    Column("withdrawal_id", String(40), primary_key=True),
    Column("subject_id", String(40), ForeignKey("subjects.subject_id"), nullable=False,
           index=True),
    Column("purposes", String(200), nullable=False, comment="comma-separated"),
    Column("erasure", Boolean, nullable=False),
    Column("method", String(20), nullable=False),
    Column("org", String(64), nullable=False),
    Column("required", String(200), nullable=False, comment="services that must acknowledge"),
    Column("status", String(10), nullable=False, index=True),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("deadline_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
)

withdrawal_acks = Table(
    "withdrawal_acks", metadata,
    Column("withdrawal_id", String(40), ForeignKey("withdrawals.withdrawal_id"),
           primary_key=True),
    Column("service", String(20), primary_key=True),
    Column("kind", String(30), primary_key=True, comment="withdrawal-applied or erasure-applied"),
    Column("applied_at", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("retained_records", Integer, nullable=True),
)

audit_log = Table(
    "audit_log", metadata,
    Column("seq", SequenceId, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False, comment="ISO 8601 UTC, exactly as hashed"),
    Column("actor", String(200), nullable=False),
    Column("actor_org", String(64), nullable=False),
    Column("action", String(60), nullable=False),
    Column("subject_id", String(40), nullable=True, index=True),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    comment="append-only and hash-chained; triggers refuse updates and deletes",
)

audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", SequenceId, nullable=False),
    Column("hash", String(64), nullable=False),
    comment="the newest entry, locked while appending; reveals removed tail entries",
)
