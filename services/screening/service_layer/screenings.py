"""Routine enquiries: recording one (and that one is due), the row and its event in one
transaction, and reading one back, audited."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from services.screening.adapters.tables import (
    enquiries_due,
    risk_assessments,
    screenings,
    team_training,
)
from services.screening.domain import access
from services.screening.domain.enquiry import HarkAnswers, findings
from services.screening.service_layer.commands import (
    RecordEnquiryDue,
    RecordScreening,
    RecordTeamTraining,
)
from services.screening.service_layer.permissions import (
    NotFound,
    check_recording,
    check_role,
    readable_orgs,
)
from services.screening.service_layer.ports import AuditTrail
from shared.auth import Principal
from shared.consent_client import LiveKeys, Registry, resolve_subject
from shared.crypto import PersonalDataCipher
from shared.db import Database, UnitOfWork, utcnow
from shared.events.envelope import CloudEvent, EncryptedBlock, EventPayload
from shared.events.screening import (
    EnquiryAcceptability,
    EnquiryDue,
    EnquiryNotAsked,
    ScreeningCompleted,
    ScreeningDeclined,
    ScreeningNotSafe,
    TeamTrainingRecorded,
)
from shared.kafka.topics import events_topic

SOURCE = "/peerlink/screening"
NOTES_CONTEXT = "screening.notes"
RESULTS_READ = "screening-results-read"
RESULTS_REFUSED = "screening-results-refused"


class ScreeningNotFound(NotFound):
    """No screening with this id, or none the caller may see."""

    def __init__(self) -> None:
        super().__init__("no screening with this id")


def record_screening(caller: Principal, command: RecordScreening, *, database: Database,
                     cipher: PersonalDataCipher, registry: Registry,
                     keys: LiveKeys) -> dict[str, Any]:
    """A clinician records a routine enquiry for their own organisation; returns the record
    with its HARK score and findings. The person is registered (or checked not to be erased)
    only once the caller may record."""
    check_recording(access.RECORD_SCREENING, caller, command.org)
    subject_id = resolve_subject(registry, keys, command.nhs_number, command.subject_id, caller)
    with database.unit_of_work() as uow:
        screening_id = store_screening(uow, cipher, command, subject_id, caller.org)
        return screening_view(find_screening(uow, screening_id), cipher)


def store_screening(uow: UnitOfWork, cipher: PersonalDataCipher, command: RecordScreening,
                    subject_id: str, recorded_by_org: str) -> str:
    """Store an enquiry and publish its outcome event; returns the screening id."""
    screening_id = f"scr_{uuid.uuid4().hex}"
    row: dict[str, Any] = command.model_dump(
        include={"org", "team", "borough", "gender", "age_band", "asked_on", "asked_by_role",
                 "training_level", "private", "outcome", "abuser_relationship",
                 "affected_mental_health", "not_asked_reason"})
    if command.acceptability is not None:
        row.update(acceptable=command.acceptability.acceptable,
                   comfort=command.acceptability.comfort)
    common: dict[str, Any] = {k: row[k] for k in (
        "org", "team", "borough", "gender", "age_band", "asked_on", "asked_by_role",
        "training_level", "private")}
    notes_block: EncryptedBlock | None = None
    event_notes: EncryptedBlock | None = None
    if command.notes:
        notes_block = cipher.seal(subject_id, NOTES_CONTEXT, {"notes": command.notes})
    payload: EventPayload
    if command.outcome == "asked":
        assert command.hark is not None and command.past_abuse is not None
        hark = HarkAnswers(**command.hark.model_dump())
        found = findings(hark, command.past_abuse)
        row.update(hark_humiliated=hark.humiliated, hark_afraid=hark.afraid,
                   hark_raped=hark.raped, hark_kicked=hark.kicked, hark_score=found.hark_score,
                   current_abuse=found.current_abuse, past_abuse=found.past_abuse,
                   disclosed=found.disclosed)
        if command.notes:
            event_notes = cipher.seal(subject_id, ScreeningCompleted.event_type,
                                      {"notes": command.notes})
        payload = ScreeningCompleted(
            screening_id=screening_id, **common, hark_score=found.hark_score,
            current_abuse=found.current_abuse, past_abuse=found.past_abuse,
            disclosed=found.disclosed, abuser_relationship=command.abuser_relationship,
            affected_mental_health=command.affected_mental_health, personal=event_notes)
    elif command.outcome == "not-asked":
        assert command.not_asked_reason is not None
        if command.notes:
            event_notes = cipher.seal(subject_id, EnquiryNotAsked.event_type,
                                      {"notes": command.notes})
        payload = EnquiryNotAsked(screening_id=screening_id, **common,
                                  reason=command.not_asked_reason, personal=event_notes)
    else:
        model = ScreeningDeclined if command.outcome == "declined" else ScreeningNotSafe
        if command.notes:
            event_notes = cipher.seal(subject_id, model.event_type, {"notes": command.notes})
        payload = model(screening_id=screening_id, **common, personal=event_notes)
    uow.session.execute(screenings.insert().values(
        screening_id=screening_id, subject_id=subject_id, **row,
        notes_sealed=notes_block.model_dump_json().encode() if notes_block else None,
        recorded_by_org=recorded_by_org, recorded_at=utcnow()))
    uow.publish(CloudEvent.wrap(payload, source=SOURCE, subject=subject_id),
                events_topic("screening"), aggregate_type="screening")
    if command.acceptability is not None:
        answer = EnquiryAcceptability(
            screening_id=screening_id, **{k: common[k] for k in (
                "org", "team", "borough", "gender", "age_band", "asked_on")},
            acceptable=command.acceptability.acceptable, comfort=command.acceptability.comfort)
        uow.publish(CloudEvent.wrap(answer, source=SOURCE, subject=subject_id),
                    events_topic("screening"), aggregate_type="screening")
    return screening_id


def screening_view(stored: Any, cipher: PersonalDataCipher) -> dict[str, Any]:
    """A stored screening as the API shows it, notes decrypted (or redacted after erasure)."""
    row = dict(stored._mapping)
    notes: str | None = None
    sealed = row.pop("notes_sealed")
    if sealed is not None and row["subject_id"] is not None:
        opened = cipher.open(row["subject_id"], NOTES_CONTEXT,
                             EncryptedBlock.model_validate_json(sealed))
        notes = opened["notes"] if isinstance(opened, dict) else opened.marker
    hark = None
    if row["outcome"] == "asked":
        hark = {q: row.pop(f"hark_{q}") for q in ("humiliated", "afraid", "raped", "kicked")}
    else:
        for q in ("humiliated", "afraid", "raped", "kicked"):
            row.pop(f"hark_{q}")
    acceptable, comfort = row.pop("acceptable"), row.pop("comfort")
    acceptability = None if acceptable is None else {"acceptable": acceptable,
                                                     "comfort": comfort}
    flags = [] if row["private"] else ["not-private: NICE QS116 expects a private discussion"]
    return {"id": row["screening_id"], **row, "hark": hark, "acceptability": acceptability,
            "notes": notes, "flags": flags}


def find_screening(uow: UnitOfWork, screening_id: str) -> Any:
    """The stored row, or None."""
    return uow.session.execute(
        select(screenings).where(screenings.c.screening_id == screening_id)).first()


def read_screening(caller: Principal, screening_id: str, *, database: Database,
                   cipher: PersonalDataCipher, audit: AuditTrail) -> dict[str, Any]:
    """One screening record, for the holder's own staff, or another organisation's with a
    relationship and the holder's partner-sharing naming it; audited. A record the caller may
    not see is ``ScreeningNotFound``, exactly as one that does not exist."""
    with database.unit_of_work() as uow:
        row = find_screening(uow, screening_id)
        subject_id = None if row is None else row.subject_id
        # a refusal names no person: whose screening an id is must not reach the refused
        # organisation's own audit trail either
        check_role(access.READ_RESULTS, caller, audit, RESULTS_REFUSED, None)
        if row is None or subject_id is None or row.org not in readable_orgs(
                uow, caller, subject_id, frozenset({row.org})):
            audit.audit(RESULTS_REFUSED, None, caller)
            raise ScreeningNotFound()
        audit.audit(RESULTS_READ, subject_id, caller)
        return screening_view(row, cipher)


def record_enquiry_due(caller: Principal, command: RecordEnquiryDue, *, database: Database,
                       registry: Registry, keys: LiveKeys) -> dict[str, Any]:
    """A clinician records that someone of their organisation should be asked: the
    denominator of coverage."""
    check_recording(access.RECORD_ENQUIRY_DUE, caller, command.org)
    subject_id = resolve_subject(registry, keys, command.nhs_number, command.subject_id, caller)
    enquiry_id = f"due_{uuid.uuid4().hex}"
    with database.unit_of_work() as uow:
        uow.session.execute(enquiries_due.insert().values(
            enquiry_id=enquiry_id, subject_id=subject_id, org=command.org, team=command.team,
            due_on=command.due_on, recorded_at=utcnow()))
        uow.publish(CloudEvent.wrap(EnquiryDue(org=command.org, team=command.team,
                                               due_on=command.due_on),
                                    source=SOURCE, subject=subject_id),
                    events_topic("screening"), aggregate_type="enquiry")
    return {"id": enquiry_id, "subject_id": subject_id, "org": command.org,
            "team": command.team, "due_on": command.due_on.isoformat()}


ENQUIRIES_DUE_LISTED = "screening-enquiries-due-listed"


def open_enquiries_due(caller: Principal, team: str | None, *, database: Database,
                       audit: AuditTrail) -> list[dict[str, Any]]:
    """A clinician's list to work from: their organisation's enquiries due (of ``team``,
    when given) that no enquiry of the organisation has answered since, oldest first; the
    listing is audited (the people's references are identifiable within the Trust)."""
    check_recording(access.RECORD_ENQUIRY_DUE, caller, caller.org)
    due, done = enquiries_due.c, screenings.c
    answered = select(done.screening_id).where(
        done.subject_id == due.subject_id, done.org == due.org,
        done.asked_on >= due.due_on).exists()
    query = select(enquiries_due).where(due.org == caller.org, due.subject_id.is_not(None),
                                        ~answered).order_by(due.due_on, due.enquiry_id)
    if team is not None:
        query = query.where(due.team == team)
    with database.read() as session:
        rows = session.execute(query).all()
    audit.audit(ENQUIRIES_DUE_LISTED, None, caller, listed=len(rows))
    return [{"id": row.enquiry_id, "subject_id": row.subject_id, "team": row.team,
             "due_on": row.due_on.isoformat()} for row in rows]


def record_team_training(caller: Principal, command: RecordTeamTraining, *,
                         database: Database) -> dict[str, Any]:
    """Someone of a team's own organisation records how many of its staff are trained in
    routine enquiry, so coverage can be read against it."""
    check_recording(access.RECORD_TEAM_TRAINING, caller, command.org)
    record_id = f"trn_{uuid.uuid4().hex}"
    values = command.model_dump()
    with database.unit_of_work() as uow:
        uow.session.execute(team_training.insert().values(
            record_id=record_id, **values, recorded_at=utcnow()))
        uow.publish(CloudEvent.wrap(TeamTrainingRecorded(**values), source=SOURCE,
                                    subject=None),
                    events_topic("screening"), aggregate_type="team-training")
    return {"id": record_id, **command.model_dump(mode="json")}


def team_training_of(caller: Principal, *, database: Database) -> list[dict[str, Any]]:
    """The newest training record of each of the caller's organisation's teams."""
    check_recording(access.RECORD_TEAM_TRAINING, caller, caller.org)
    t = team_training.c
    with database.read() as session:
        rows = session.execute(select(team_training).where(t.org == caller.org)
                               .order_by(t.team, t.as_of.desc(), t.recorded_at.desc()))
        newest: dict[str, dict[str, Any]] = {}
        for row in rows:
            newest.setdefault(row.team, {
                "id": row.record_id, "org": row.org, "team": row.team,
                "as_of": row.as_of.isoformat(), "staff": row.staff, "trained": row.trained})
    return list(newest.values())


def record_orgs(uow: UnitOfWork, subject_id: str) -> frozenset[str]:
    """The organisations holding screening or risk records of the person (for the access
    decision only: never shown)."""
    query = select(screenings.c.org).where(screenings.c.subject_id == subject_id).union(
        select(risk_assessments.c.org).where(risk_assessments.c.subject_id == subject_id))
    return frozenset(uow.session.execute(query).scalars())


def screenings_of(uow: UnitOfWork, subject_id: str, cipher: PersonalDataCipher,
                  orgs: frozenset[str]) -> list[dict[str, Any]]:
    """The screenings of one person held by ``orgs``, newest first."""
    rows = uow.session.execute(select(screenings).where(
        screenings.c.subject_id == subject_id, screenings.c.org.in_(sorted(orgs)))
        .order_by(screenings.c.asked_on.desc()))
    return [screening_view(row, cipher) for row in rows]
