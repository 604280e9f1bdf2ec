"""Safeguarding concerns from any contact, their queue, safe contact and the MARAC projection.

A concern's details, notes and safe contact are sealed under mentoring's records key, not
the person's data key: they rest on their own lawful basis and survive erasure. A concern
about a person with a MARAC referral in the 12 months before it (by subject reference, or by
the person's safeguarding pseudonym, which links them across re-registration) is a repeat;
only the safeguarding lead is told, never the raiser (any organisation with a relationship).

A safe contact is an organisation's copy (consent holds one per person and organisation): an
update reaches only the referrals that organisation made or received and the concerns it
raised, and each referral and concern records whose copy it holds (``safe_contact_org``).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from services.mentoring.adapters.tables import (
    adverse_events,
    concern_transitions,
    marac_referrals,
    matches,
    mentee_feedback,
    mentoring_sessions,
    outcomes,
    referrals,
    safeguarding_concerns,
)
from services.mentoring.domain import access
from services.mentoring.service_layer.commands import RaiseConcern
from services.mentoring.service_layer.errors import NotFound
from services.mentoring.service_layer.ports import AuditTrail, Consent, SafeguardingRegistry
from services.mentoring.service_layer.publishing import publish
from shared.auth import NotPermitted, Principal
from shared.crypto import KeyShredded, PersonalDataCipher, RecordCipher, UnknownSubject
from shared.db import Database, UnitOfWork, insert_if_absent, utcnow
from shared.events.consent import SafeContact
from shared.events.envelope import EncryptedBlock
from shared.events.mentoring import (
    AdverseEventRecorded,
    MenteeFeedbackGiven,
    MentoringEnded,
    SafeguardingConcernRaised,
)
from shared.identity import SUBJECT_PATTERN

SAFE_CONTACT = "mentoring.safe-contact"
"""The data-key context of safe contact kept on referrals made before records-key sealing."""
REPEAT_WINDOW = timedelta(days=365)
CASE_SYSTEM = "case-system"
"""Who raised a concern that came from a DVA partner's case system (no person's token)."""


class ConcernNotFound(LookupError):
    """No concern the caller may act on has this id."""


class StepNotAllowed(ValueError):
    """The concern is not in the state the step leaves (the message names its state)."""


class NotRelated(ValueError):
    """The referral or match named is not this person's, or not the caller's organisation's
    (the message names the field)."""


def pseudonym_of(registry: SafeguardingRegistry, subject_id: str) -> str | None:
    """The person's safeguarding pseudonym, or None when consent cannot make one (unknown or
    erased person: their concerns then link by subject reference only)."""
    try:
        return registry.safeguarding_pseudonym(subject_id)
    except (UnknownSubject, KeyShredded):
        return None


def _contact_context(record_id: str) -> str:
    return f"{record_id}/safe-contact"


def seal_contact(records: RecordCipher, record_id: str, contact: dict[str, Any]) -> bytes:
    """A safe contact sealed under the records key for one referral or concern."""
    return records.seal(_contact_context(record_id), SafeContact.model_validate(contact)
                        .model_dump())


def referral_contact(row: Any, cipher: PersonalDataCipher, records: RecordCipher
                     ) -> dict[str, Any] | str | None:
    """A referral's safe contact: under the records key, else (referrals made before it was
    kept there) under the data key; a marker string once that key is shredded."""
    if row.safe_contact_kept is not None:
        return records.open(_contact_context(row.referral_id), row.safe_contact_kept)
    if row.safe_contact_sealed is None or not row.subject_id:
        return None
    opened = cipher.open(row.subject_id, SAFE_CONTACT,
                         EncryptedBlock.model_validate_json(row.safe_contact_sealed))
    return opened if isinstance(opened, dict) else opened.marker


def keep_contacts(uow: UnitOfWork, cipher: PersonalDataCipher, records: RecordCipher,
                  where: Any) -> None:
    """Move the safe contact of the referrals ``where`` selects from the data key to the
    records key (a safe contact is a safeguarding record, kept through withdrawal)."""
    rows = uow.session.execute(select(referrals).where(
        where, referrals.c.safe_contact_sealed.is_not(None))).all()
    for row in rows:
        contact = referral_contact(row, cipher, records)
        kept = row.safe_contact_kept
        if kept is None and isinstance(contact, dict):
            kept = seal_contact(records, row.referral_id, contact)
        uow.session.execute(update(referrals).where(
            referrals.c.referral_id == row.referral_id).values(
            safe_contact_kept=kept, safe_contact_sealed=None))


def replace_contact(uow: UnitOfWork, records: RecordCipher, subject_id: str, org: str,
                    contact: dict[str, Any]) -> None:
    """``org``'s copy of the person's safe contact changed: replace it on the referrals ``org``
    made or received and the concerns ``org`` raised, and nowhere else. Any organisation with
    a relationship may record its own copy (an abuser working at a partner can register the
    person), so its copy never reaches another organisation's records."""
    session = uow.session
    # a receiver whose sharing the referrer withdrew is no longer party to the referral
    receiving = and_(referrals.c.to_org == org, referrals.c.sharing_withdrawn.is_(False))
    for referral_id in session.execute(select(referrals.c.referral_id).where(
            referrals.c.subject_id == subject_id,
            or_(referrals.c.referred_by_org == org, receiving))
            ).scalars().all():
        session.execute(update(referrals).where(referrals.c.referral_id == referral_id).values(
            safe_contact_kept=seal_contact(records, referral_id, contact),
            safe_contact_sealed=None, safe_contact_org=org))
    for concern_id in session.execute(select(safeguarding_concerns.c.concern_id).where(
            safeguarding_concerns.c.subject_id == subject_id,
            safeguarding_concerns.c.org == org)).scalars().all():
        session.execute(update(safeguarding_concerns).where(
            safeguarding_concerns.c.concern_id == concern_id).values(
            safe_contact_sealed=seal_contact(records, concern_id, contact),
            safe_contact_org=org))


def update_referral_contact(uow: UnitOfWork, records: RecordCipher, referral_id: str,
                            contact: SafeContact, org: str) -> None:
    """Replace one referral's safe contact with ``org``'s copy (``org`` made or received it;
    its other records follow consent's event)."""
    uow.session.execute(update(referrals).where(referrals.c.referral_id == referral_id).values(
        safe_contact_kept=seal_contact(records, referral_id, contact.model_dump()),
        safe_contact_sealed=None, safe_contact_org=org))


# --- MARAC projection and repeats -----------------------------------------------------------

def marac_referral_projected(uow: UnitOfWork, referral_id: str, subject_id: str | None,
                             pseudonym: str | None, raised_on: date) -> None:
    """Screening raised a MARAC referral: remember whom, and when, for the repeat flag."""
    insert_if_absent(uow.session, marac_referrals, referral_id=referral_id,
                     subject_id=subject_id, safeguarding_pseudonym=pseudonym,
                     raised_on=raised_on)


def is_repeat(session: Session, subject_id: str, pseudonym: str | None, raised_on: date
              ) -> bool:
    """Whether the person had a MARAC referral in the 12 months up to ``raised_on``."""
    who = marac_referrals.c.subject_id == subject_id
    if pseudonym is not None:
        who = or_(who, marac_referrals.c.safeguarding_pseudonym == pseudonym)
    return session.execute(select(marac_referrals.c.referral_id).where(
        who, marac_referrals.c.raised_on <= raised_on,
        marac_referrals.c.raised_on >= raised_on - REPEAT_WINDOW).limit(1)).first() is not None


# --- concerns ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Concern:
    """A concern to put on the queue."""

    subject_id: str
    org: str
    raised_on: date
    details: str
    raised_by: str | None = None
    """The token subject of who raised it; None from a partner's case system."""
    referral_id: str | None = None
    match_id: str | None = None
    session_id: str | None = None
    safe_contact: dict[str, Any] | None = None


def contact_org(row: Any) -> str:
    """Whose copy a referral's safe contact is: the organisation that last gave it (the
    referrer's, as given with the referral, when none is recorded)."""
    return str(row.safe_contact_org or row.referred_by_org)


def latest_contact(session: Session, records: RecordCipher, cipher: PersonalDataCipher,
                   subject_id: str, org: str) -> tuple[dict[str, Any], str] | None:
    """The latest safe contact ``org`` holds for the person, and whose copy it is: on the
    referrals it made or received (newest first), else on the concerns it raised."""
    rows = session.execute(select(referrals).where(
        referrals.c.subject_id == subject_id,
        or_(referrals.c.referred_by_org == org, referrals.c.to_org == org))
        .order_by(referrals.c.seq.desc())).all()
    for row in rows:
        contact = referral_contact(row, cipher, records)
        if isinstance(contact, dict):
            return contact, contact_org(row)
    kept = session.execute(select(safeguarding_concerns.c.concern_id,
                                  safeguarding_concerns.c.safe_contact_sealed,
                                  safeguarding_concerns.c.safe_contact_org).where(
        safeguarding_concerns.c.subject_id == subject_id, safeguarding_concerns.c.org == org,
        safeguarding_concerns.c.safe_contact_sealed.is_not(None))
        .order_by(safeguarding_concerns.c.raised_at.desc())).first()
    if kept is None:
        return None
    return (records.open(_contact_context(kept.concern_id), kept.safe_contact_sealed),
            str(kept.safe_contact_org or org))


def check_related(session: Session, concern: Concern) -> None:
    """``NotRelated`` unless the referral and match named are the person's and the raising
    organisation referred or received them."""
    if concern.referral_id is not None:
        row = session.execute(select(referrals).where(
            referrals.c.referral_id == concern.referral_id)).first()
        if row is None or row.subject_id != concern.subject_id or concern.org not in (
                row.referred_by_org, row.to_org):
            raise NotRelated("referral_id: no referral of this person made or received by "
                             "your organisation has this id")
    if concern.match_id is not None:
        found = session.execute(select(matches.c.referral_id).where(
            matches.c.match_id == concern.match_id)).first()
        row = None if found is None else session.execute(select(referrals).where(
            referrals.c.referral_id == found.referral_id)).first()
        if row is None or row.subject_id != concern.subject_id or concern.org not in (
                row.referred_by_org, row.to_org) or (
                concern.referral_id not in (None, row.referral_id)):
            raise NotRelated("match_id: no match of this person's referral made or received "
                             "by your organisation has this id")


def put_on_queue(uow: UnitOfWork, cipher: PersonalDataCipher, records: RecordCipher,
                 concern: Concern, pseudonym: str | None) -> dict[str, Any]:
    """Put a concern on the Trust's queue: sealed under the records key, flagged as a repeat
    when the person had a MARAC referral in the 12 months before, and published. The answer
    does not say whether it is a repeat: that would tell the raiser (any organisation with a
    relationship) about the person's MARAC referrals; the safeguarding lead's queue shows it.
    """
    session = uow.session
    concern_id = f"sgc_{uuid.uuid4().hex}"
    repeat = is_repeat(session, concern.subject_id, pseudonym, concern.raised_on)
    contact, whose = concern.safe_contact, concern.org
    if contact is None:
        found = latest_contact(session, records, cipher, concern.subject_id, concern.org)
        if found is not None:
            contact, whose = found
    details = {"concern_details": concern.details}
    now = utcnow()
    session.execute(safeguarding_concerns.insert().values(
        concern_id=concern_id, subject_id=concern.subject_id, match_id=concern.match_id,
        referral_id=concern.referral_id, session_id=concern.session_id, org=concern.org,
        raised_on=concern.raised_on, raised_at=now, raised_by=concern.raised_by,
        details_sealed=records.seal(concern_id, details),
        safe_contact_sealed=None if contact is None else seal_contact(records, concern_id,
                                                                      contact),
        safe_contact_org=None if contact is None else whose, repeat=repeat, status="open"))
    session.execute(concern_transitions.insert().values(
        concern_id=concern_id, status="open", by_subject=concern.raised_by or CASE_SYSTEM,
        by_org=concern.org, at=now))
    personal = None
    # an erased person's concern is kept here; the event then carries no details
    with contextlib.suppress(KeyShredded):
        personal = cipher.seal(concern.subject_id, SafeguardingConcernRaised.event_type,
                               details)
    publish(uow, SafeguardingConcernRaised(
        concern_id=concern_id, match_id=concern.match_id, session_id=concern.session_id,
        referral_id=concern.referral_id, org=concern.org, raised_on=concern.raised_on,
        repeat=repeat, personal=personal), concern.subject_id)
    return {"id": concern_id, "org": concern.org, "raised_on": concern.raised_on.isoformat(),
            "referral_id": concern.referral_id, "match_id": concern.match_id,
            "status": "open", "safe_contact_kept": contact is not None}


def raise_concern(database: Database, consent: Consent, cipher: PersonalDataCipher,
                  records: RecordCipher, command: RaiseConcern, caller: Principal
                  ) -> dict[str, Any]:
    """Raise a concern from any contact (waitlisted, after an ending, at withdrawal) about a
    person the caller's organisation has a relationship with (else ``UnknownSubject``), naming
    only their referral and match (else ``NotRelated``); it goes on the queue at once."""
    # what is not a subject reference names no one: answered as an unknown person, and never
    # put in a URL of the consent service
    if not re.fullmatch(SUBJECT_PATTERN, command.subject_id) or not (
            consent.consents(command.subject_id, caller.org).relationship):
        raise UnknownSubject()
    pseudonym = pseudonym_of(consent, command.subject_id)
    with database.unit_of_work() as uow:
        concern = Concern(
            subject_id=command.subject_id, org=caller.org, raised_on=command.raised_on,
            details=command.details, raised_by=caller.subject,
            referral_id=command.referral_id, match_id=command.match_id,
            safe_contact=None if command.safe_contact is None
            else command.safe_contact.model_dump())
        check_related(uow.session, concern)
        return put_on_queue(uow, cipher, records, concern, pseudonym)


def step(uow: UnitOfWork, records: RecordCipher, concern_id: str, taken: access.ConcernStep,
         caller: Principal, note: str | None) -> dict[str, Any]:
    """Take one step of the queue. The state is changed only if it is still the one the step
    leaves, and each state is entered once (a unique row), so of two leads acting at once one
    step is recorded and the other is told the state it found. Only the Trust's safeguarding
    lead takes a step (else ``NotPermitted``)."""
    if not access.may_step(taken, caller.org_kind, caller.roles):
        raise NotPermitted("only the Trust's safeguarding lead moves a concern on the queue")
    session = uow.session
    row = session.execute(select(safeguarding_concerns.c.status).where(
        safeguarding_concerns.c.concern_id == concern_id).with_for_update()).first()
    if row is None:
        raise ConcernNotFound()
    leaves, enters = access.CONCERN_STEPS[taken]
    refusal = StepNotAllowed(f"the concern is {row.status}: only a concern that is {leaves} "
                             f"can be moved to {enters}")
    if access.step_from(taken, row.status) is None:
        raise refusal
    changed = session.execute(update(safeguarding_concerns).where(
        safeguarding_concerns.c.concern_id == concern_id,
        safeguarding_concerns.c.status == leaves).values(status=enters))
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise refusal
    at = utcnow()
    session.execute(concern_transitions.insert().values(
        concern_id=concern_id, status=enters, by_subject=caller.subject, by_org=caller.org,
        at=at, note_sealed=None if note is None else records.seal(
            f"{concern_id}/{enters}", {"note": note})))
    return {"id": concern_id, "status": enters, "by": caller.subject, "at": at.isoformat()}


@dataclass(frozen=True)
class ConcernReader:
    """What of a concern its reader is shown. The safeguarding lead (``lead``) sees the safe
    contact, the repeat flag and every step's note; anyone else sees states and times, and
    (``org``, a subject access export) who acted and the notes only on the steps ``org``
    recorded, and the safe contact only when it is ``org``'s own copy."""

    lead: bool
    org: str | None = None


LEAD = ConcernReader(lead=True)
DPO = ConcernReader(lead=False)


def _history(session: Session, records: RecordCipher, concern_id: str,
             reader: ConcernReader) -> list[dict[str, Any]]:
    rows = session.execute(select(concern_transitions).where(
        concern_transitions.c.concern_id == concern_id).order_by(concern_transitions.c.seq))
    shown = []
    for t in rows:
        own = reader.org is None or t.by_org == reader.org
        note = None
        if t.note_sealed is not None and (reader.lead or (reader.org is not None and own)):
            note = records.open(f"{concern_id}/{t.status}", t.note_sealed)["note"]
        shown.append({"status": t.status, "by": t.by_subject if own else None,
                      "org": t.by_org, "at": t.at.isoformat(), "note": note})
    return shown


def concern_view(session: Session, row: Any, records: RecordCipher, reader: ConcernReader
                 ) -> dict[str, Any]:
    """A concern, details decrypted, for ``reader`` (see ``ConcernReader``): otherwise only
    whether a safe contact is kept, and no repeat flag (null)."""
    details = None
    if row.details_sealed is not None:
        details = records.open(row.concern_id, row.details_sealed)["concern_details"]
    contact = None
    own_copy = reader.org is not None and row.safe_contact_org == reader.org
    if (reader.lead or own_copy) and row.safe_contact_sealed is not None:
        contact = records.open(_contact_context(row.concern_id), row.safe_contact_sealed)
    return {"id": row.concern_id, "subject_id": row.subject_id, "match_id": row.match_id,
            "referral_id": row.referral_id, "session_id": row.session_id, "org": row.org,
            "raised_on": row.raised_on.isoformat(), "status": row.status,
            "repeat": bool(row.repeat) if reader.lead else None,
            "concern_details": details, "safe_contact": contact,
            "safe_contact_kept": row.safe_contact_sealed is not None,
            "flagged_for_dpo": row.flagged_for_dpo_at is not None,
            "history": _history(session, records, row.concern_id, reader)}


def concerns(session: Session, status: str | None, flagged_for_dpo: bool | None,
             org: str | None, records: RecordCipher, show_contact: bool
             ) -> list[dict[str, Any]]:
    """The safeguarding queue (raised by ``org`` only, unless None), oldest first: the
    lead's (``show_contact``) with safe contact, repeat flag and notes, a DPO's without."""
    query = select(safeguarding_concerns).order_by(safeguarding_concerns.c.raised_on)
    if org is not None:
        query = query.where(safeguarding_concerns.c.org == org)
    if status is not None:
        query = query.where(safeguarding_concerns.c.status == status)
    if flagged_for_dpo is not None:
        flag = safeguarding_concerns.c.flagged_for_dpo_at
        query = query.where(flag.is_not(None) if flagged_for_dpo else flag.is_(None))
    reader = LEAD if show_contact else DPO
    return [concern_view(session, row, records, reader) for row in session.execute(query)]


def queue(database: Database, trail: AuditTrail, records: RecordCipher, caller: Principal,
          status: str | None, flagged_for_dpo: bool | None) -> list[dict[str, Any]]:
    """The part of the Trust's safeguarding queue the caller sees (``NotPermitted`` for
    anyone but its safeguarding lead and data protection officers): the lead's with each
    concern's safe contact, a DPO's only those flagged by erasure (a partner's DPO, those its
    own organisation raised). Every person shown is audited, and each safe contact shown."""
    scope = access.concern_scope(caller.org, caller.org_kind, caller.roles)
    if scope is None:
        trail.audit("mentoring-concerns-refused", None, caller)
        raise NotPermitted("the safeguarding queue belongs to the Trust's safeguarding lead")
    contact = access.shows_concern_safe_contact(scope)
    with database.read() as session:
        shown = concerns(session, status, True if scope.flagged_only else flagged_for_dpo,
                         scope.org, records, contact)
    for subject_id in dict.fromkeys(c["subject_id"] for c in shown):
        trail.audit("mentoring-concern-read", subject_id, caller,
                    concerns=sum(c["subject_id"] == subject_id for c in shown))
    for subject_id in dict.fromkeys(c["subject_id"] for c in shown
                                    if c["safe_contact"] is not None):
        trail.audit("mentoring-safe-contact-read", subject_id, caller,
                    concerns=sum(c["subject_id"] == subject_id
                                 and c["safe_contact"] is not None for c in shown))
    return shown


def oldest_open_age_seconds(session: Session, now: datetime) -> float:
    """Age of the oldest concern not yet acknowledged (0 when there is none)."""
    row = session.execute(select(safeguarding_concerns.c.raised_at,
                                 safeguarding_concerns.c.raised_on).where(
        safeguarding_concerns.c.status == "open")).all()
    if not row:
        return 0.0
    oldest = min(r.raised_at or datetime.combine(r.raised_on, time(), UTC)
                 for r in row)
    return max(0.0, (now - oldest).total_seconds())


# --- subject access --------------------------------------------------------------------------

def export(session: Session, cipher: PersonalDataCipher, records: RecordCipher,
           subject_id: str, org: str) -> dict[str, Any]:
    """Everything mentoring holds about the person for ``org``, decrypted: the referrals it
    made or received (not those whose details it lost when sharing was withdrawn) with their
    safe contact, the matches, sessions and outcomes of those it received, and the concerns
    it raised with their history (who acted and the notes only on the steps it recorded: the
    safeguarding lead's notes are the Trust's) and their safe contact only when it is the
    organisation's own copy."""
    held = session.execute(select(referrals).where(
        referrals.c.subject_id == subject_id,
        or_(referrals.c.referred_by_org == org, referrals.c.to_org == org))
        .order_by(referrals.c.seq)).all()
    shown_referrals, shown_matches = [], []
    for row in held:
        related = access.relationship(org, row.referred_by_org, row.to_org,
                                      bool(row.sharing_withdrawn))
        if related not in ("referrer", "receiver"):
            continue
        shown_referrals.append({
            "id": row.referral_id, "referred_by_org": row.referred_by_org, "to_org": row.to_org,
            "referred_on": row.referred_on.isoformat(), "status": row.status,
            "preferences": {"mentor_gender": row.mentor_gender, "language": row.language,
                            "mode": row.mode, "borough": row.borough},
            "safe_contact": referral_contact(row, cipher, records)})
        found = session.execute(select(matches).where(
            matches.c.referral_id == row.referral_id)).first()
        if found is not None and related == "receiver":
            shown_matches.append(_match_export(session, cipher, subject_id, found))
    raised = session.execute(select(safeguarding_concerns).where(
        safeguarding_concerns.c.subject_id == subject_id, safeguarding_concerns.c.org == org)
        .order_by(safeguarding_concerns.c.raised_on)).all()
    return {"org": org, "referrals": shown_referrals,
            "matches": shown_matches,
            "safeguarding_concerns": [concern_view(session, r, records,
                                                   ConcernReader(lead=False, org=org))
                                      for r in raised]}


def export_subject(database: Database, consent: Consent, cipher: PersonalDataCipher,
                   records: RecordCipher, subject_id: str, caller: Principal
                   ) -> dict[str, Any]:
    """Subject access for a DPO: everything mentoring holds about the person for the DPO's
    own organisation (see ``export``); a person it has no relationship with is not found
    (``NotFound``). Audited, refused or not."""
    try:
        related = consent.consents(subject_id, caller.org).relationship
    except (UnknownSubject, KeyShredded):
        related = False
    if not related:
        consent.audit("mentoring-export-refused", None, caller)
        raise NotFound("person")
    with database.read() as session:
        exported = export(session, cipher, records, subject_id, caller.org)
    consent.audit("mentoring-subject-export", subject_id, caller,
                  referrals=len(exported["referrals"]),
                  concerns=len(exported["safeguarding_concerns"]))
    return exported


def _match_export(session: Session, cipher: PersonalDataCipher, subject_id: str, found: Any
                  ) -> dict[str, Any]:
    reason = _opened(cipher, subject_id, MentoringEnded.event_type, found.end_reason_sealed,
                     "reason")
    held_sessions = session.execute(select(mentoring_sessions).where(
        mentoring_sessions.c.match_id == found.match_id)
        .order_by(mentoring_sessions.c.held_on)).all()
    measured = session.execute(select(outcomes).where(outcomes.c.match_id == found.match_id)
                               .order_by(outcomes.c.recorded_on)).all()
    feedback = session.execute(select(mentee_feedback).where(
        mentee_feedback.c.match_id == found.match_id)).first()
    harms = session.execute(select(adverse_events).where(
        adverse_events.c.match_id == found.match_id)
        .order_by(adverse_events.c.occurred_on)).all()
    return {"id": found.match_id, "referral_id": found.referral_id,
            "mentor_id": found.mentor_id, "org": found.org,
            "matched_on": found.matched_on.isoformat(), "status": found.status,
            "ended_on": found.ended_on.isoformat() if found.ended_on else None,
            "planned": found.planned, "end_reason": reason,
            "sessions": [{"id": s.session_id, "held_on": s.held_on.isoformat(),
                          "duration_minutes": s.duration_minutes, "mode": s.mode,
                          "attendance": s.attendance,
                          "components": s.components.split(",") if s.components else [],
                          "safeguarding_concern": s.safeguarding_concern}
                         for s in held_sessions],
            "feedback": None if feedback is None else {
                "given_on": feedback.given_on.isoformat(), "helped": feedback.helped,
                "made_worse": feedback.made_worse,
                "comment": _opened(cipher, subject_id, MenteeFeedbackGiven.event_type,
                                   feedback.comment_sealed, "comment")},
            "adverse_events": [{
                "id": a.adverse_event_id, "occurred_on": a.occurred_on.isoformat(),
                "kind": a.kind, "serious": a.serious, "relatedness": a.relatedness,
                "details": _opened(cipher, subject_id, AdverseEventRecorded.event_type,
                                   a.details_sealed, "details")} for a in harms],
            "outcomes": [{"id": o.outcome_id, "timepoint": o.timepoint,
                          "instrument": o.instrument, "raw_score": o.raw_score,
                          "metric_score": o.metric_score,
                          "recorded_on": o.recorded_on.isoformat()} for o in measured]}




def _opened(cipher: PersonalDataCipher, subject_id: str, context: str, sealed: bytes | None,
            key: str) -> Any:
    """One sealed field, opened (its marker once the key is shredded; None if never kept)."""
    if sealed is None:
        return None
    opened = cipher.open(subject_id, context, EncryptedBlock.model_validate_json(sealed))
    return opened[key] if isinstance(opened, dict) else opened.marker
