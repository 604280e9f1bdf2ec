"""Risk assessments, MARAC referrals and the safeguarding lead's queue.

A MARAC referral is raised on the safeguarding lead's queue at once, whatever the consent
state, with an IDVA referral to go with it: from a DASH meeting a criterion, on professional
judgement alone when the DASH could not be completed, or recorded after another agency (most
often the police) made it outside Peerlink. Safeguarding records rest on their own lawful
basis, so their personal parts (answers, judgement reasons, incident counts, safe contact) are
sealed under screening's safeguarding records key, not the person's data key, and carry the
person's safeguarding pseudonym: they survive erasure, and a repeat is recognised after the
person is registered again.

The safe contact is each organisation's own: a referral carries the one its organisation gave
(with it, or latest, ``safe_contacts`` per person and organisation), and ``safe-contact-updated``
from an organisation replaces it only on that organisation's referrals. Anyone can register a
person at a partner, so one organisation's copy never reaches another's referral.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import or_, select, update

from services.screening.adapters.tables import (
    marac_referrals,
    referral_locks,
    risk_assessments,
    safe_contacts,
)
from services.screening.domain import access
from services.screening.domain.access import MaracView
from services.screening.domain.risk import (
    MaracDecision,
    external_decision,
    judgement_decision,
    marac_decision,
)
from services.screening.service_layer.commands import (
    RecordExternalReferral,
    RecordJudgementReferral,
    RecordRiskAssessment,
)
from services.screening.service_layer.permissions import NotFound, check_recording
from services.screening.service_layer.ports import AuditTrail, SafeguardingRegistry
from shared.auth import NotPermitted, Principal
from shared.consent_client import LiveKeys, Registry, resolve_subject
from shared.crypto import KeyShredded, PersonalDataCipher, RecordCipher, UnknownSubject
from shared.db import Database, UnitOfWork, insert_if_absent, utcnow
from shared.events.consent import SafeContact
from shared.events.envelope import CloudEvent, EncryptedBlock
from shared.events.screening import MaracReferralRequired, RiskAssessed
from shared.events.vocabulary import MaracReferralSource
from shared.kafka.topics import events_topic

SOURCE = "/peerlink/screening"
SEALED_CONTEXT = "screening.risk-assessment"
"""The context of answers sealed under the person's data key (rows before 0005)."""
LAWFUL_BASIS: Final = (
    "safeguarding: kept under UK GDPR Article 6(1)(e) (a public task; 6(1)(c) where a "
    "statutory safeguarding duty applies) and Article 9(2)(g) (substantial public interest: "
    "Data Protection Act 2018 Schedule 1 paragraph 18, safeguarding of children and of "
    "individuals at risk); the right to erasure does not apply (Article 17(3)(b))")
"""Why a MARAC referral and the assessment behind it are kept when erasure is asked for."""
QUEUE_ENTRY_READ = "marac-referral-read"
QUEUE_REFUSED = "marac-queue-refused"
REFERRAL_SENT = "marac-referral-sent"
SAFE_CONTACT_READ = "marac-safe-contact-read"


class ReferralNotFound(NotFound):
    """No MARAC referral has this id."""

    def __init__(self) -> None:
        super().__init__("no MARAC referral with this id")


@dataclass(frozen=True)
class Person:
    """Who a safeguarding record is about: the subject reference and, when consent could make
    one, the safeguarding pseudonym that outlives it."""

    subject_id: str
    pseudonym: str | None


@dataclass(frozen=True)
class Raised:
    """Who raised a record, for which organisation."""

    org: str
    by: str


def safeguarded(safeguarding: SafeguardingRegistry, subject_id: str, caller: Principal,
                safe_contact: SafeContact | None) -> Person:
    """The person with their safeguarding pseudonym; a safe contact given is recorded with
    consent first, so every holder gets it. An erased person has no pseudonym, and is answered
    as an unknown one (``UnknownSubject``)."""
    try:
        pseudonym = safeguarding.safeguarding_pseudonym(subject_id)
    except KeyShredded:
        raise UnknownSubject() from None
    if safe_contact is not None:
        safeguarding.update_safe_contact(subject_id, safe_contact, caller)
    return Person(subject_id, pseudonym)


def assessment_context(assessment_id: str) -> str:
    """The records-key context of one risk assessment's sealed part."""
    return f"screening.risk-assessment:{assessment_id}"


def referral_context(referral_id: str) -> str:
    """The records-key context of one MARAC referral's sealed part (its safe contact)."""
    return f"screening.marac-referral:{referral_id}"


def contact_context(subject_id: str, org: str) -> str:
    """The records-key context of the latest safe contact ``org`` holds for a person."""
    return f"screening.safe-contact:{subject_id}:{org}"


def hold_person(uow: UnitOfWork, subject_id: str) -> None:
    """Lock the person's row in ``referral_locks`` (created if absent) until the transaction
    ends, so two writers raising referrals for one person at once, for the same organisation
    or for two, see each other's, and a safe contact replaced meanwhile reaches a referral
    raised before it (PostgreSQL; SQLite write transactions are serial already)."""
    insert_if_absent(uow.session, referral_locks, subject_id=subject_id, created_at=utcnow())
    uow.session.execute(select(referral_locks.c.subject_id).where(
        referral_locks.c.subject_id == subject_id).with_for_update()).one()


def previous_referral_dates(uow: UnitOfWork, person: Person) -> list[date]:
    """When MARAC referrals were made for the person before, by any organisation or outside
    Peerlink, found by subject reference or safeguarding pseudonym."""
    match = marac_referrals.c.subject_id == person.subject_id
    if person.pseudonym is not None:
        match = or_(match, marac_referrals.c.safeguarding_pseudonym == person.pseudonym)
    return list(uow.session.execute(select(marac_referrals.c.raised_on).where(match)).scalars())


def latest_safe_contact(uow: UnitOfWork, records: RecordCipher, subject_id: str, org: str,
                        given: SafeContact | None) -> dict[str, Any] | None:
    """The safe contact for a new referral by ``org``: the one given (kept as ``org``'s
    latest known), else the latest ``org`` holds for the person, else none. Never another
    organisation's: whoever registers the person elsewhere (an abuser working at a partner,
    say) cannot put their own number on this organisation's referral."""
    hold_person(uow, subject_id)
    if given is not None:
        contact = given.model_dump()
        store_safe_contact(uow, records, subject_id, org, contact)
        return contact
    sealed = uow.session.execute(select(safe_contacts.c.record_sealed).where(
        safe_contacts.c.subject_id == subject_id, safe_contacts.c.org == org)).scalar()
    if sealed is None:
        return None
    opened: dict[str, Any] = records.open(contact_context(subject_id, org), sealed)
    return opened


def store_safe_contact(uow: UnitOfWork, records: RecordCipher, subject_id: str, org: str,
                       contact: dict[str, Any]) -> None:
    """Keep ``contact`` as the latest safe contact ``org`` holds for the person."""
    key = (safe_contacts.c.subject_id == subject_id, safe_contacts.c.org == org)
    sealed = records.seal(contact_context(subject_id, org), contact)
    if not insert_if_absent(uow.session, safe_contacts, subject_id=subject_id, org=org,
                            record_sealed=sealed, updated_at=utcnow()):
        uow.session.execute(update(safe_contacts).where(*key).values(
            record_sealed=sealed, updated_at=utcnow()))


def replace_safe_contact(uow: UnitOfWork, records: RecordCipher, subject_id: str, org: str,
                         contact: dict[str, Any]) -> int:
    """``org``'s copy of the person's safe contact changed: ``org``'s latest known, and every
    MARAC referral ``org`` raised or recorded for them (open or kept), carry the new one.
    Another organisation's referrals keep theirs. Returns how many referrals changed."""
    hold_person(uow, subject_id)
    store_safe_contact(uow, records, subject_id, org, contact)
    ids = uow.session.execute(select(marac_referrals.c.referral_id).where(
        marac_referrals.c.subject_id == subject_id,
        marac_referrals.c.org == org)).scalars().all()
    for referral_id in ids:
        uow.session.execute(update(marac_referrals).where(
            marac_referrals.c.referral_id == referral_id).values(
            record_sealed=records.seal(referral_context(referral_id),
                                       {"safe_contact": contact})))
    return len(ids)


def _raise_referral(uow: UnitOfWork, records: RecordCipher, person: Person, raised: Raised,
                    decision: MaracDecision, *, source: MaracReferralSource,
                    raised_on: date, assessment_id: str | None,
                    safe_contact: dict[str, Any] | None, referring_agency: str | None = None
                    ) -> str:
    referral_id = f"marac_{uuid.uuid4().hex}"
    external = source == "external"
    uow.session.execute(marac_referrals.insert().values(
        referral_id=referral_id, subject_id=person.subject_id, assessment_id=assessment_id,
        org=raised.org, raised_on=raised_on, raised_by=raised.by,
        criteria_met=",".join(decision.criteria_met), idva_referral_required=True,
        status="sent" if external else "open", sent_at=utcnow() if external else None,
        source=source, referring_agency=referring_agency,
        safeguarding_pseudonym=person.pseudonym,
        record_sealed=records.seal(referral_context(referral_id),
                                   {"safe_contact": safe_contact})))
    _publish(uow, MaracReferralRequired(
        org=raised.org, referral_id=referral_id, assessment_id=assessment_id,
        raised_on=raised_on, criteria_met=decision.criteria_met, source=source,
        safeguarding_pseudonym=person.pseudonym), person.subject_id)
    return referral_id


def _store_assessment(uow: UnitOfWork, records: RecordCipher, person: Person, org: str,
                      decision: MaracDecision, *, assessed_on: date, incidents: int,
                      professional_referral: bool, checklist: str,
                      sealed: dict[str, Any]) -> str:
    assessment_id = f"dash_{uuid.uuid4().hex}"
    uow.session.execute(risk_assessments.insert().values(
        assessment_id=assessment_id, subject_id=person.subject_id, org=org,
        assessed_on=assessed_on, dash_score=decision.score,
        incidents_last_12_months=incidents, professional_referral=professional_referral,
        criteria_met=",".join(decision.criteria_met),
        marac_referral_required=decision.referral_required, sealed=None,
        record_sealed=records.seal(assessment_context(assessment_id),
                                   {**sealed, "incidents_last_12_months": incidents}),
        checklist=checklist, safeguarding_pseudonym=person.pseudonym, recorded_at=utcnow()))
    return assessment_id


def _outcome(assessment_id: str | None, person: Person, decision: MaracDecision,
             referral_id: str | None) -> dict[str, Any]:
    return {"id": assessment_id, "subject_id": person.subject_id, "score": decision.score,
            "criteria_met": list(decision.criteria_met),
            "repeat": "repeat" in decision.criteria_met,
            "marac_referral_required": decision.referral_required,
            "marac_referral_id": referral_id,
            "idva_referral_required": decision.referral_required}


def record_risk_assessment(caller: Principal, command: RecordRiskAssessment, *,
                           database: Database, cipher: PersonalDataCipher,
                           records: RecordCipher, registry: Registry, keys: LiveKeys,
                           safeguarding: SafeguardingRegistry,
                           escalation_incidents: int) -> dict[str, Any]:
    """A clinician scores a DASH checklist for their organisation and applies the MARAC
    criteria; a referral is raised at once (a repeat when the person had one in the 12
    months before, by anyone)."""
    check_recording(access.RECORD_RISK_ASSESSMENT, caller, caller.org)
    subject_id = resolve_subject(registry, keys, command.nhs_number, command.subject_id, caller)
    person = safeguarded(safeguarding, subject_id, caller, command.safe_contact)
    with database.unit_of_work() as uow:
        return store_risk_assessment(uow, cipher, records, command, person,
                                     Raised(caller.org, caller.subject), escalation_incidents)


def store_risk_assessment(uow: UnitOfWork, cipher: PersonalDataCipher, records: RecordCipher,
                          command: RecordRiskAssessment, person: Person, raised: Raised,
                          escalation_incidents: int) -> dict[str, Any]:
    """Score the checklist, apply the MARAC criteria, raise a referral when required."""
    hold_person(uow, person.subject_id)
    judgement = command.professional_judgement
    decision = marac_decision(
        command.answers, judgement.referral, command.incidents_last_12_months,
        command.assessed_on, previous_referral_dates(uow, person), escalation_incidents)
    assessment_id = _store_assessment(
        uow, records, person, raised.org, decision, assessed_on=command.assessed_on,
        incidents=command.incidents_last_12_months, professional_referral=judgement.referral,
        checklist="complete", sealed={"answers": list(command.answers),
                                      "reasons": judgement.reasons})
    event_personal = cipher.seal(person.subject_id, RiskAssessed.event_type,
                                 {"answers": list(command.answers),
                                  "professional_judgement_reasons": judgement.reasons})
    _publish(uow, RiskAssessed(
        org=raised.org, assessment_id=assessment_id, assessed_on=command.assessed_on,
        dash_score=decision.score, incidents_last_12_months=command.incidents_last_12_months,
        criteria_met=decision.criteria_met,
        marac_referral_required=decision.referral_required, personal=event_personal),
        person.subject_id)
    referral_id = None
    if decision.referral_required:
        contact = latest_safe_contact(uow, records, person.subject_id, raised.org,
                                      command.safe_contact)
        referral_id = _raise_referral(uow, records, person, raised, decision, source="dash",
                                      raised_on=command.assessed_on,
                                      assessment_id=assessment_id, safe_contact=contact)
    elif command.safe_contact is not None:
        store_safe_contact(uow, records, person.subject_id, raised.org,
                           command.safe_contact.model_dump())
    return _outcome(assessment_id, person, decision, referral_id)


def record_judgement_referral(caller: Principal, command: RecordJudgementReferral, *,
                              database: Database, records: RecordCipher, registry: Registry,
                              keys: LiveKeys, safeguarding: SafeguardingRegistry,
                              escalation_incidents: int) -> dict[str, Any]:
    """A clinician refers to the MARAC on professional judgement when the DASH could not be
    completed, with the reasons, why it was not completed and any answers given."""
    check_recording(access.RECORD_JUDGEMENT_REFERRAL, caller, caller.org)
    subject_id = resolve_subject(registry, keys, command.nhs_number, command.subject_id, caller)
    person = safeguarded(safeguarding, subject_id, caller, command.safe_contact)
    with database.unit_of_work() as uow:
        return store_judgement_referral(uow, records, command, person,
                                        Raised(caller.org, caller.subject),
                                        escalation_incidents)


def store_judgement_referral(uow: UnitOfWork, records: RecordCipher,
                             command: RecordJudgementReferral, person: Person, raised: Raised,
                             escalation_incidents: int) -> dict[str, Any]:
    """A referral on professional judgement with a partial (or no) DASH: the partial
    checklist is kept as a risk assessment behind the referral."""
    hold_person(uow, person.subject_id)
    decision = judgement_decision(command.partial_answers, command.incidents_last_12_months,
                                  command.referred_on, previous_referral_dates(uow, person),
                                  escalation_incidents)
    assessment_id = _store_assessment(
        uow, records, person, raised.org, decision, assessed_on=command.referred_on,
        incidents=command.incidents_last_12_months, professional_referral=True,
        checklist="partial" if command.partial_answers else "none",
        sealed={"answers": list(command.partial_answers), "reasons": command.reasons,
                "not_completed_reason": command.not_completed_reason})
    contact = latest_safe_contact(uow, records, person.subject_id, raised.org,
                                  command.safe_contact)
    referral_id = _raise_referral(uow, records, person, raised, decision, source="judgement",
                                  raised_on=command.referred_on, assessment_id=assessment_id,
                                  safe_contact=contact)
    return _outcome(assessment_id, person, decision, referral_id)


def record_external_referral(caller: Principal, command: RecordExternalReferral, *,
                             database: Database, records: RecordCipher, registry: Registry,
                             keys: LiveKeys,
                             safeguarding: SafeguardingRegistry) -> dict[str, Any]:
    """Record a MARAC referral another agency (most often the police) made outside Peerlink,
    so that the next one within 12 months is recognised as a repeat."""
    check_recording(access.RECORD_EXTERNAL_REFERRAL, caller, caller.org)
    subject_id = resolve_subject(registry, keys, None, command.subject_id, caller)
    person = safeguarded(safeguarding, subject_id, caller, command.safe_contact)
    with database.unit_of_work() as uow:
        return store_external_referral(uow, records, command, person,
                                       Raised(caller.org, caller.subject))


def store_external_referral(uow: UnitOfWork, records: RecordCipher,
                            command: RecordExternalReferral, person: Person,
                            raised: Raised) -> dict[str, Any]:
    """Record a referral another agency made: already with the MARAC (status sent)."""
    hold_person(uow, person.subject_id)
    decision = external_decision(command.referred_on, previous_referral_dates(uow, person))
    contact = latest_safe_contact(uow, records, person.subject_id, raised.org,
                                  command.safe_contact)
    referral_id = _raise_referral(uow, records, person, raised, decision, source="external",
                                  raised_on=command.referred_on, assessment_id=None,
                                  safe_contact=contact,
                                  referring_agency=command.referring_agency)
    return {"id": referral_id, "subject_id": person.subject_id,
            "criteria_met": list(decision.criteria_met),
            "repeat": "repeat" in decision.criteria_met, "source": "external",
            "referring_agency": command.referring_agency, "status": "sent"}


def _publish(uow: UnitOfWork, payload: RiskAssessed | MaracReferralRequired,
             subject_id: str) -> None:
    uow.publish(CloudEvent.wrap(payload, source=SOURCE, subject=subject_id),
                events_topic("screening"), aggregate_type="risk")


def referral_view(row: Any) -> dict[str, Any]:
    """A MARAC referral as the queue shows it to everyone who sees it (no personal parts).
    A referral kept after the person asked for erasure says why it is kept."""
    criteria = row.criteria_met.split(",")
    flagged = row.flagged_for_dpo_at is not None
    return {"id": row.referral_id, "subject_id": row.subject_id,
            "assessment_id": row.assessment_id, "org": row.org,
            "raised_on": row.raised_on.isoformat(), "raised_by": row.raised_by,
            "source": row.source, "referring_agency": row.referring_agency,
            "criteria_met": criteria, "repeat": "repeat" in criteria,
            "idva_referral_required": row.idva_referral_required, "status": row.status,
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "flagged_for_dpo": flagged, "lawful_basis": LAWFUL_BASIS if flagged else None}


def referral_details(uow: UnitOfWork, records: RecordCipher, cipher: PersonalDataCipher,
                     row: Any) -> dict[str, Any]:
    """The referral's personal parts, for those acting on it: its safe contact and the
    assessment behind it (answers, reasons, incidents), opened."""
    contact = None
    if row.record_sealed is not None:
        contact = records.open(referral_context(row.referral_id),
                               row.record_sealed)["safe_contact"]
    assessment = None
    if row.assessment_id is not None:
        found = uow.session.execute(select(risk_assessments).where(
            risk_assessments.c.assessment_id == row.assessment_id)).first()
        if found is not None:
            assessment = assessment_view(found, records, cipher, row.subject_id)
    return {"safe_contact": contact, "assessment": assessment}


def referrals(uow: UnitOfWork, view: MaracView, org: str, caller_subject: str,
              status: str | None, flagged_for_dpo: bool | None) -> list[Any]:
    """The rows of the queue that ``view`` shows a caller of ``org``, oldest first, filtered.

    The safeguarding lead sees every referral, whoever raised it (none is raised out of their
    sight); a clinician only those they raised at their organisation; a DPO only their
    organisation's referrals flagged for them.
    """
    query = select(marac_referrals).order_by(marac_referrals.c.raised_on,
                                             marac_referrals.c.referral_id)
    if view is MaracView.RAISED_BY_CALLER:
        query = query.where(marac_referrals.c.org == org,
                            marac_referrals.c.raised_by == caller_subject)
    elif view is MaracView.FLAGGED_FOR_DPO:
        query = query.where(marac_referrals.c.org == org,
                            marac_referrals.c.flagged_for_dpo_at.is_not(None))
    if status is not None:
        query = query.where(marac_referrals.c.status == status)
    if flagged_for_dpo is not None:
        flagged = marac_referrals.c.flagged_for_dpo_at
        query = query.where(flagged.is_not(None) if flagged_for_dpo else flagged.is_(None))
    return list(uow.session.execute(query))


def marac_queue(caller: Principal, status: str | None, flagged_for_dpo: bool | None, *,
                database: Database, cipher: PersonalDataCipher, records: RecordCipher,
                audit: AuditTrail) -> list[dict[str, Any]]:
    """The part of the MARAC queue the caller's role sees (``access.marac_view``), filtered,
    with the safe contact and the assessment behind each referral for those acting on it.
    Each entry shown, and each safe contact, is audited; a role that sees none of the queue
    is refused, audited."""
    view = access.marac_view(caller.roles)
    if view is None:
        audit.audit(QUEUE_REFUSED, None, caller)
        raise NotPermitted("the MARAC queue belongs to the Trust's safeguarding lead")
    with database.unit_of_work() as uow:
        rows = referrals(uow, view, caller.org, caller.subject, status, flagged_for_dpo)
        shown = [{**referral_view(row),
                  **(referral_details(uow, records, cipher, row)
                     if access.sees_safe_contact(view) else {})} for row in rows]
    for entry in shown:
        audit.audit(QUEUE_ENTRY_READ, entry["subject_id"], caller, referral_id=entry["id"])
        if entry.get("safe_contact") is not None:
            audit.audit(SAFE_CONTACT_READ, entry["subject_id"], caller,
                        referral_id=entry["id"])
    return shown


def mark_sent(caller: Principal, referral_id: str, *, database: Database,
              audit: AuditTrail) -> dict[str, Any]:
    """The safeguarding lead records that the referral (and its IDVA referral) went to the
    MARAC; idempotent, audited. ``ReferralNotFound`` when there is no such referral."""
    with database.unit_of_work() as uow:
        row = uow.session.execute(select(marac_referrals).where(
            marac_referrals.c.referral_id == referral_id)).first()
        if row is None:
            raise ReferralNotFound()
        if row.status != "sent":
            uow.session.execute(update(marac_referrals).where(
                marac_referrals.c.referral_id == referral_id).values(status="sent",
                                                                     sent_at=utcnow()))
        sent = referral_view(uow.session.execute(select(marac_referrals).where(
            marac_referrals.c.referral_id == referral_id)).one())
        audit.audit(REFERRAL_SENT, sent["subject_id"], caller)
        return sent


def assessment_view(row: Any, records: RecordCipher, cipher: PersonalDataCipher,
                    subject_id: str) -> dict[str, Any]:
    """One risk assessment, its sealed part opened: under the records key, or (rows before
    0005) under the person's data key, redacted once that key is shredded."""
    opened: dict[str, Any] = {}
    marker: Any = None
    if row.record_sealed is not None:
        opened = records.open(assessment_context(row.assessment_id), row.record_sealed)
    elif row.sealed is not None:
        legacy = cipher.open(subject_id, SEALED_CONTEXT,
                             EncryptedBlock.model_validate_json(row.sealed))
        if isinstance(legacy, dict):
            opened = legacy
        else:
            marker = legacy.marker
    return {
        "id": row.assessment_id, "org": row.org, "assessed_on": row.assessed_on.isoformat(),
        "checklist": row.checklist, "score": row.dash_score,
        "incidents_last_12_months": row.incidents_last_12_months,
        "criteria_met": [c for c in row.criteria_met.split(",") if c],
        "marac_referral_required": row.marac_referral_required,
        "answers": opened.get("answers", marker),
        "not_completed_reason": opened.get("not_completed_reason"),
        "professional_judgement": {"referral": row.professional_referral,
                                   "reasons": opened.get("reasons", marker)}}


def assessments_of(uow: UnitOfWork, subject_id: str, cipher: PersonalDataCipher,
                   records: RecordCipher, orgs: frozenset[str]) -> list[dict[str, Any]]:
    """The risk assessments of one person held by ``orgs``, newest first, answers opened."""
    rows = uow.session.execute(select(risk_assessments).where(
        risk_assessments.c.subject_id == subject_id,
        risk_assessments.c.org.in_(sorted(orgs))).order_by(
        risk_assessments.c.assessed_on.desc()))
    return [assessment_view(row, records, cipher, subject_id) for row in rows]


def referrals_of(uow: UnitOfWork, records: RecordCipher, cipher: PersonalDataCipher,
                 subject_id: str, org: str) -> list[dict[str, Any]]:
    """The MARAC referrals ``org`` made or recorded for the person, with their details."""
    rows = uow.session.execute(select(marac_referrals).where(
        marac_referrals.c.subject_id == subject_id, marac_referrals.c.org == org).order_by(
        marac_referrals.c.raised_on, marac_referrals.c.referral_id))
    return [{**referral_view(row), **referral_details(uow, records, cipher, row)}
            for row in rows]
