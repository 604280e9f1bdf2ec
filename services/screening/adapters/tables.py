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
    Column("not_asked_reason", String(20), nullable=True,
           comment="why an enquiry that was due was not made (outcome not-asked)"),
    Column("acceptable", String(10), nullable=True,
           comment='the person\'s answer to "Was it all right to be asked?"'),
    Column("comfort", Integer, nullable=True, comment="how comfortable being asked, 1 to 5"),
    Column("notes_sealed", LargeBinary, nullable=True, comment="notes under the data key"),
    Column("recorded_by_org", String(64), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

team_training = Table(
    "team_training", metadata,
    Column("record_id", String(40), primary_key=True),
    Column("org", String(64), nullable=False),
    Column("team", String(100), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("staff", Integer, nullable=False),
    Column("trained", Integer, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    comment="staff trained in routine enquiry per team, as of a date (about staff only)",
)

relationships = Table(
    "relationships", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("org", String(64), primary_key=True),
    Column("basis", String(20), nullable=False, comment="registered or referral (the first)"),
    Column("established_at", UtcDateTime(), nullable=False),
    comment="which organisations have a relationship with a person (relationship-established)",
)

partner_sharing = Table(
    "partner_sharing", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("holder_org", String(64), primary_key=True,
           comment="the organisation that holds the records and recorded the consent"),
    Column("recipient_org", String(64), primary_key=True,
           comment="the organisation the holder's records may be shared with"),
    Column("state", String(10), nullable=False, comment="granted or withdrawn"),
    Column("changed_at", UtcDateTime(), nullable=False),
    comment="partner-sharing consent per holder and recipient, as consent published it",
)

enquiries_due = Table(
    "enquiries_due", metadata,
    Column("enquiry_id", String(40), primary_key=True),
    Column("subject_id", String(40), nullable=True, index=True, comment="null once erased"),
    Column("org", String(64), nullable=False),
    Column("team", String(100), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

risk_assessments = Table(
    "risk_assessments", metadata,
    Column("assessment_id", String(40), primary_key=True),
    Column("subject_id", String(40), nullable=True, index=True, comment="null once erased"),
    Column("org", String(64), nullable=False),
    Column("assessed_on", Date, nullable=False),
    Column("dash_score", Integer, nullable=False),
    Column("incidents_last_12_months", Integer, nullable=False),
    Column("professional_referral", Boolean, nullable=False),
    Column("criteria_met", String(200), nullable=False, comment="comma-separated"),
    Column("marac_referral_required", Boolean, nullable=False),
    Column("sealed", LargeBinary, nullable=True,
           comment="answers and judgement reasons under the data key (before 0005); removed "
                   "on erasure"),
    Column("record_sealed", LargeBinary, nullable=True,
           comment="answers, judgement reasons, incidents (and why a checklist was not "
                   "completed) under screening's safeguarding records key; kept on erasure "
                   "while a MARAC referral rests on it"),
    Column("checklist", String(10), nullable=False, server_default="complete",
           comment="complete, partial or none (a referral on judgement alone)"),
    Column("safeguarding_pseudonym", String(100), nullable=True, index=True,
           comment="keyed pseudonym of the NHS number from consent: links re-registrations"),
    Column("recorded_at", UtcDateTime(), nullable=False),
)

marac_referrals = Table(
    "marac_referrals", metadata,
    Column("referral_id", String(40), primary_key=True),
    Column("subject_id", String(40), nullable=False, index=True,
           comment="kept on erasure: MARAC rests on its own lawful basis, not consent"),
    Column("assessment_id", String(40), nullable=True,
           comment="the risk assessment behind it; null for a referral made outside Peerlink"),
    Column("org", String(64), nullable=False),
    Column("raised_on", Date, nullable=False),
    Column("source", String(10), nullable=False, server_default="dash",
           comment="dash, judgement or external (made outside Peerlink)"),
    Column("referring_agency", String(100), nullable=True,
           comment="who made an external referral (for example the police)"),
    Column("safeguarding_pseudonym", String(100), nullable=True, index=True,
           comment="keyed pseudonym of the NHS number from consent: a repeat is recognised "
                   "after erasure and re-registration"),
    Column("record_sealed", LargeBinary, nullable=True,
           comment="the safe contact under screening's safeguarding records key"),
    Column("raised_by", String(200), nullable=True,
           comment="the caller (token subject) who raised it; null for referrals before 0004"),
    Column("criteria_met", String(200), nullable=False),
    Column("idva_referral_required", Boolean, nullable=False),
    Column("status", String(10), nullable=False, index=True, comment="open or sent"),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("flagged_for_dpo_at", UtcDateTime(), nullable=True,
           comment="set when the person asked for erasure: the DPO decides"),
)

safe_contacts = Table(
    "safe_contacts", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("org", String(64), primary_key=True,
           comment="the organisation whose copy it is: safe-contact-updated's org, or the one "
                   "that gave it with a referral"),
    Column("record_sealed", LargeBinary, nullable=True,
           comment="the latest safe contact under screening's safeguarding records key"),
    Column("updated_at", UtcDateTime(), nullable=False),
    comment="per person and organisation, the latest safe contact that organisation holds; a "
            "new referral by the organisation without one falls back to it, never to another "
            "organisation's",
)

referral_locks = Table(
    "referral_locks", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
    comment="one row per person, locked while a safeguarding record is raised for them or "
            "their safe contact replaced, so two writers (of any organisations) see each "
            "other's referrals",
)
