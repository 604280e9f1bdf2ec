"""Mentoring use cases: mentors, referrals, matching, sessions, concerns, outcomes, endings.

Each writes its state and its events in one transaction. Matching is automatic for waitlisted
referrals, in referral order, whenever a mentor gains room or becomes matchable. Who may see
and do what is decided here, by ``services.mentoring.domain.access``, once per request; every
read of identifiable data, allowed or refused, is audited.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from services.mentoring.adapters.tables import (
    matches,
    mentee_feedback,
    mentoring_sessions,
    mentors,
    outcomes,
    referrals,
    supervisions,
)
from services.mentoring.domain import access
from services.mentoring.domain.access import Relationship, relationship
from services.mentoring.domain.intervention import Intervention
from services.mentoring.domain.matching import (
    EligibilityRules,
    MentorProfile,
    Preferences,
    choose_mentor,
    not_matchable_because,
)
from services.mentoring.domain.outcomes import score
from services.mentoring.service_layer import safeguarding
from services.mentoring.service_layer.commands import (
    EndMatch,
    LogSession,
    RecordOutcome,
    RecordSupervision,
    ReferMentee,
    RegisterMentor,
)
from services.mentoring.service_layer.errors import NotActive, NotFound, UnknownCodes
from services.mentoring.service_layer.ports import (
    AuditTrail,
    Consent,
    LiveKeys,
    SafeguardingRegistry,
)
from services.mentoring.service_layer.publishing import publish
from shared.auth import NotPermitted, Principal
from shared.consent_client import SharingRequired, resolve_subject
from shared.crypto import KeyShredded, PersonalDataCipher, RecordCipher, UnknownSubject
from shared.db import Database, UnitOfWork, utcnow
from shared.events.consent import SafeContact
from shared.events.mentoring import (
    FollowUpRecorded,
    MatchMade,
    MenteeFeedbackGiven,
    MenteeReferred,
    MentoringEnded,
    MentoringPreferences,
    MentorRegistered,
    MentorStatusChanged,
    OutcomeRecorded,
    SessionComponentsRecorded,
    SessionLogged,
    SupervisionRecorded,
)
from shared.events.vocabulary import FOLLOW_UPS

CONSENT_WITHDRAWN = "consent withdrawn"


class NotAPartner(ValueError):
    """A referral's receiver is not a DVA partner (the message names those that are)."""


class ConsentRequired(PermissionError):
    """The referrer's consent does not allow the referral: ``error`` says which is missing
    (``consent-required``, ``sharing-required``), the message what to record."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class NotTheMentee(ValueError):
    """A partner's event names someone other than the match's mentee."""


def _csv(values: Any) -> str:
    return ",".join(values)


# --- mentors -------------------------------------------------------------------------------

def register_mentor(uow: UnitOfWork, command: RegisterMentor, org: str, today: date,
                    rules: EligibilityRules) -> dict[str, Any]:
    """Register a mentor of the coordinator's own organisation ``org`` (else
    ``NotPermitted``); the event carries no name. Waitlisted referrals to ``org`` are matched
    if the mentor can take them; returns the mentor as their coordinator sees them."""
    if command.org != org:
        raise NotPermitted("coordinators register mentors of their own organisation only")
    mentor_id = f"mnt_{uuid.uuid4().hex}"
    uow.session.execute(mentors.insert().values(
        mentor_id=mentor_id,
        **command.model_dump(exclude={"languages", "modes", "supervision_held_on"}),
        languages=_csv(command.languages), modes=_csv(command.modes),
        last_supervision_on=command.supervision_held_on, registered_at=utcnow()))
    publish(uow, MentorRegistered(mentor_id=mentor_id, **command.model_dump(
        exclude={"display_name", "supervision_held_on"})), mentor_id)
    return _rematched(uow, mentor_id, org, today, rules)


def mentor_row(session: Session, mentor_id: str, org: str | None) -> Any:
    """A mentor of ``org`` (any organisation when None), or ``NotFound``."""
    query = select(mentors).where(mentors.c.mentor_id == mentor_id)
    if org is not None:
        query = query.where(mentors.c.org == org)
    row = session.execute(query).first()
    if row is None:
        raise NotFound("mentor")
    return row


def mentors_of(session: Session, org: str) -> list[Any]:
    """An organisation's mentors, oldest registration first."""
    return list(session.execute(select(mentors).where(mentors.c.org == org)
                                .order_by(mentors.c.registered_at)))


def match_of(session: Session, referral_id: str) -> Any:
    """The match a referral led to, if any."""
    return session.execute(select(matches).where(matches.c.referral_id == referral_id)).first()


def _current_mentees(session: Session) -> dict[str, int]:
    return dict(session.execute(select(matches.c.mentor_id, func.count())
                                .where(matches.c.status == "active")
                                .group_by(matches.c.mentor_id)).all())


def _profile(row: Any, current: int) -> MentorProfile:
    return MentorProfile(
        mentor_id=row.mentor_id, gender=row.gender, languages=frozenset(row.languages.split(",")),
        borough=row.borough, modes=frozenset(row.modes.split(",")), capacity=row.capacity,
        status=row.status, training_completed_on=row.training_completed_on,
        check_completed_on=row.check_completed_on, last_supervision_on=row.last_supervision_on,
        current_mentees=current, last_matched_at=row.last_matched_at)


def mentor_view(session: Session, row: Any, today: date, rules: EligibilityRules
                ) -> dict[str, Any]:
    """A mentor as their coordinator sees them, with whether and why not matchable."""
    current = _current_mentees(session).get(row.mentor_id, 0)
    reasons = not_matchable_because(_profile(row, current), today, rules)
    view = {k: v for k, v in row._mapping.items() if k not in {"languages", "modes"}}
    return {"id": row.mentor_id, **view, "languages": row.languages.split(","),
            "modes": row.modes.split(","), "current_mentees": current,
            "matchable": not reasons, "not_matchable_because": reasons}


def list_mentors(session: Session, org: str, today: date, rules: EligibilityRules
                 ) -> list[dict[str, Any]]:
    """``org``'s mentors as their coordinators see them, oldest registration first."""
    return [mentor_view(session, row, today, rules) for row in mentors_of(session, org)]


def get_mentor(session: Session, mentor_id: str, org: str, today: date,
               rules: EligibilityRules) -> dict[str, Any]:
    """One of ``org``'s mentors as their coordinators see them (``NotFound`` for any other)."""
    return mentor_view(session, mentor_row(session, mentor_id, org), today, rules)


def _rematched(uow: UnitOfWork, mentor_id: str, org: str, today: date,
               rules: EligibilityRules) -> dict[str, Any]:
    """After a change to one of ``org``'s mentors, match ``org``'s waitlist (the mentor may
    now have room or be matchable) and return the mentor as their coordinator sees them."""
    match_waitlist(uow, today, rules, org)
    return get_mentor(uow.session, mentor_id, org, today, rules)


def record_supervision(uow: UnitOfWork, mentor_id: str, org: str, command: RecordSupervision,
                       today: date, rules: EligibilityRules, intervention: Intervention
                       ) -> dict[str, Any]:
    """Record supervision and what it covered (keeps the mentor matchable); waitlisted
    referrals are matched if the mentor now can take them. Returns the mentor as their
    coordinator sees them."""
    unknown = intervention.unknown_topics(command.covered)
    if unknown:
        raise UnknownCodes("covered", unknown, intervention.supervision_topics)
    row = mentor_row(uow.session, mentor_id, org)
    held_on = command.held_on
    uow.session.execute(supervisions.insert().values(
        supervision_id=f"sup_{uuid.uuid4().hex}", mentor_id=mentor_id, held_on=held_on,
        covered=_csv(command.covered), recorded_at=utcnow()))
    publish(uow, SupervisionRecorded(mentor_id=mentor_id, org=org, held_on=held_on,
                                     covered=tuple(command.covered)), mentor_id)
    if row.last_supervision_on is None or held_on > row.last_supervision_on:
        uow.session.execute(update(mentors).where(mentors.c.mentor_id == mentor_id)
                            .values(last_supervision_on=held_on))
    return _rematched(uow, mentor_id, org, today, rules)


def change_status(uow: UnitOfWork, mentor_id: str, org: str, status: str, today: date,
                  rules: EligibilityRules) -> dict[str, Any]:
    """Change a mentor's status and say so; becoming matchable matches waitlisted referrals.
    Returns the mentor as their coordinator sees them."""
    row = mentor_row(uow.session, mentor_id, org)
    if row.status != status:
        uow.session.execute(update(mentors).where(mentors.c.mentor_id == mentor_id)
                            .values(status=status))
        publish(uow, MentorStatusChanged(mentor_id=mentor_id, org=org,
                                          previous_status=row.status, status=status),
                 mentor_id)
    return _rematched(uow, mentor_id, org, today, rules)


# --- who may see and do what --------------------------------------------------------------

def _enforce(decision: access.Decision, record: str) -> None:
    """``NotFound`` when the record is hidden from the caller, ``NotPermitted`` if refused."""
    if decision.outcome == "hidden":
        raise NotFound(record)
    if decision.outcome == "refused":
        raise NotPermitted(decision.reason)


def relationship_to(row: Any, org: str) -> Relationship:
    """What ``org`` is to a referral row: its referrer, receiver (sharing withdrawn or not),
    or nothing."""
    return relationship(org, row.referred_by_org, row.to_org, bool(row.sharing_withdrawn))


def referral_for(session: Session, referral_id: str, caller: Principal,
                 action: access.Action) -> tuple[Any, Relationship]:
    """The referral and the caller's relationship to it, if ``action`` is allowed;
    otherwise ``NotFound`` (unknown, or nothing to the caller's organisation) or
    ``NotPermitted``."""
    row = referral_row(session, referral_id)
    related = relationship_to(row, caller.org)
    _enforce(access.decide(action, related, caller.roles), "referral")
    return row, related


def check_recordable(session: Session, keys: LiveKeys, match_id: str, caller: Principal
                     ) -> None:
    """``NotFound`` or ``NotPermitted`` unless the caller may record on the match;
    ``KeyShredded`` once the mentee is erased, asked of consent and never the cache."""
    found = match_row(session, match_id, None)
    referral = referral_row(session, found.referral_id)
    _enforce(access.decide("record", relationship_to(referral, caller.org), caller.roles),
             "match")
    require_live(keys, referral)


# --- referrals and matching ----------------------------------------------------------------

def refer(database: Database, consent: Consent, keys: LiveKeys, cipher: PersonalDataCipher,
          records: RecordCipher, partners: Collection[str], command: ReferMentee,
          caller: Principal, today: date) -> dict[str, Any]:
    """Refer a person to a DVA partner's intake (``partners``) on behalf of the caller's own
    organisation: needs its peer-mentoring consent and, to another organisation, its
    partner-sharing naming it (the receiver is then given a relationship with the person).
    Returns the referral as the referrer sees it."""
    if command.referred_by_org != caller.org:
        raise NotPermitted("you may refer only on behalf of your own organisation")
    if command.to_org not in partners:
        raise NotAPartner("to_org must name a DVA partner organisation: "
                          f"{', '.join(sorted(partners))}")
    subject_id = resolve_subject(consent, keys, command.nhs_number, command.subject_id, caller)
    referrer = consent.consents(subject_id, caller.org)
    if not referrer.relationship:
        raise UnknownSubject()
    if not referrer.granted("peer-mentoring"):
        raise ConsentRequired("consent-required", "peer-mentoring consent recorded by your "
                              "organisation is not active for this person: record it before "
                              "referring")
    if command.to_org != caller.org:
        try:
            consent.establish_referral(subject_id, command.to_org, caller)
        except SharingRequired:
            raise ConsentRequired("sharing-required", "partner-sharing consent recorded by "
                                  f"your organisation does not name {command.to_org}: record "
                                  "the person's consent to share with it before referring"
                                  ) from None
    with database.unit_of_work() as uow:
        referral_id = _record_referral(uow, cipher, records, command, subject_id, today)
        return referral_view(uow.session, referral_row(uow.session, referral_id), cipher,
                             records, show_safe_contact=False, viewer_org=caller.org)


def _record_referral(uow: UnitOfWork, cipher: PersonalDataCipher, records: RecordCipher,
                     command: ReferMentee, subject_id: str, today: date) -> str:
    """Record a referral (consent already checked); its safe contact is a safeguarding
    record, sealed under the records key (the event carries it under the data key)."""
    referral_id = f"ref_{uuid.uuid4().hex}"
    contact = command.safe_contact.model_dump()
    prefs = command.preferences
    uow.session.execute(referrals.insert().values(
        referral_id=referral_id, subject_id=subject_id, referred_by_org=command.referred_by_org,
        to_org=command.to_org, referred_on=today, mentor_gender=prefs.mentor_gender,
        language=prefs.language, mode=prefs.mode, borough=prefs.borough,
        safe_contact_kept=safeguarding.seal_contact(records, referral_id, contact),
        status="referred",
        waitlisted=False))
    publish(uow, MenteeReferred(
        referral_id=referral_id, referred_by_org=command.referred_by_org,
        to_org=command.to_org, referred_on=today,
        preferences=MentoringPreferences(**prefs.model_dump()),
        personal=cipher.seal(subject_id, MenteeReferred.event_type, {"safe_contact": contact})),
        subject_id)
    return referral_id


def referral_row(session: Session, referral_id: str) -> Any:
    """A referral, or ``NotFound``."""
    row = session.execute(select(referrals).where(referrals.c.referral_id == referral_id)
                          ).first()
    if row is None:
        raise NotFound("referral")
    return row


def intake(session: Session, trail: AuditTrail, cipher: PersonalDataCipher,
           records: RecordCipher, caller: Principal, status: str) -> list[dict[str, Any]]:
    """The caller's organisation's intake in ``status``: the referrals sent to it that the
    caller may read, oldest first, without safe contact; each person shown is audited once."""
    rows = [r for r in _intake_rows(session, caller.org, status)
            if access.decide("read-referral", relationship_to(r, caller.org),
                             caller.roles).allowed]
    views = [referral_view(session, r, cipher, records, show_safe_contact=False,
                           viewer_org=caller.org) for r in rows]
    for subject_id in dict.fromkeys(r.subject_id for r in rows if r.subject_id):
        trail.audit("mentoring-intake-read", subject_id, caller, status=status)
    return views


def read_referral(session: Session, trail: AuditTrail, cipher: PersonalDataCipher,
                  records: RecordCipher, referral_id: str, caller: Principal
                  ) -> dict[str, Any]:
    """A referral as the caller may see it: to the referrer (status and preferences), to the
    receiving organisation (with safe contact for its coordinators); ``NotFound`` or
    ``NotPermitted`` otherwise. The read, allowed or refused, is audited."""
    try:
        row = referral_row(session, referral_id)
    except NotFound:
        trail.audit("mentoring-referral-refused", None, caller, referral_id=referral_id,
                    refusal="hidden")
        raise
    related = relationship_to(row, caller.org)
    decision = access.decide("read-referral", related, caller.roles)
    if not decision.allowed:
        # an organisation with no relationship is not told whom the referral is about, not
        # even through its own DPO's view of the audit trail
        trail.audit("mentoring-referral-refused",
                    None if decision.outcome == "hidden" else row.subject_id, caller,
                    referral_id=referral_id, refusal=decision.outcome)
        _enforce(decision, "referral")
    contact = access.decide("read-safe-contact", related, caller.roles).allowed
    view = referral_view(session, row, cipher, records, show_safe_contact=contact,
                         viewer_org=caller.org)
    trail.audit("mentoring-safe-contact-read" if contact else "mentoring-referral-read",
                row.subject_id, caller, referral_id=row.referral_id)
    return view


def update_safe_contact(database: Database, registry: SafeguardingRegistry,
                        records: RecordCipher, referral_id: str, contact: SafeContact,
                        caller: Principal) -> dict[str, Any]:
    """Replace the caller's organisation's copy of the person's safe contact (staff of the
    referral's either end): recorded with consent, which tells every holder of that copy,
    and on this referral at once; ``NotActive`` once the person is erased."""
    with database.read() as session:
        row, _related = referral_for(session, referral_id, caller, "update-safe-contact")
    if row.subject_id is None:
        raise NotActive("the person was erased: their safe contact is kept for the data "
                        "protection officer and no longer changes")
    registry.update_safe_contact(row.subject_id, contact, caller)
    with database.unit_of_work() as uow:
        safeguarding.update_referral_contact(uow, records, referral_id, contact, caller.org)
    return {"id": referral_id, "safe_contact_updated": True}


def _lock_mentors(session: Session, org: str) -> list[Any]:
    """An organisation's mentors, locked (in mentor_id order, so lockers never deadlock)
    until the transaction ends: whoever counts their mentees next waits for this match."""
    return list(session.execute(select(mentors).where(mentors.c.org == org)
                                .order_by(mentors.c.mentor_id).with_for_update()))


def match_referral(uow: UnitOfWork, referral_id: str, caller: Principal, today: date,
                   rules: EligibilityRules) -> dict[str, Any]:
    """Match a referral for the receiving organisation's coordinators (``NotFound`` or
    ``NotPermitted`` for anyone else): see ``match``."""
    referral_for(uow.session, referral_id, caller, "match")
    return match(uow, referral_id, today, rules)


def match(uow: UnitOfWork, referral_id: str, today: date, rules: EligibilityRules
          ) -> dict[str, Any]:
    """Match a referral with the best mentor of its receiving organisation now, or waitlist
    it naming the unmet constraints."""
    session = uow.session
    to_org = referral_row(session, referral_id).to_org
    if to_org is None:
        raise NotActive("the referral names no receiving organisation")
    # Lock the candidates first, then read the referral and count mentees: a concurrent
    # match of the same mentors waits here and then counts the match this one made.
    locked = _lock_mentors(session, to_org)
    row = session.execute(select(referrals).where(referrals.c.referral_id == referral_id)
                          .with_for_update()).one()
    if row.status == "matched":
        existing = session.execute(select(matches).where(
            matches.c.referral_id == referral_id)).one()
        return {"status": "matched", "match_id": existing.match_id,
                "mentor_id": existing.mentor_id}
    if row.status not in {"referred", "waitlisted"}:
        raise NotActive(f"the referral is {row.status}")
    current = _current_mentees(session)
    profiles = [_profile(m, current.get(m.mentor_id, 0)) for m in locked]
    wanted = Preferences(mentor_gender=row.mentor_gender, language=row.language, mode=row.mode,
                         borough=row.borough)
    choice = choose_mentor(wanted, profiles, today, rules)
    if choice.mentor_id is None:
        session.execute(update(referrals).where(referrals.c.referral_id == referral_id).values(
            status="waitlisted", waitlisted=True, unmet_constraints=_csv(choice.unmet)))
        return {"status": "waitlisted", "unmet_constraints": list(choice.unmet)}
    mentor = next(m for m in locked if m.mentor_id == choice.mentor_id)
    match_id = f"mat_{uuid.uuid4().hex}"
    session.execute(matches.insert().values(
        match_id=match_id, referral_id=referral_id, mentor_id=mentor.mentor_id, org=mentor.org,
        matched_on=today, status="active"))
    session.execute(update(referrals).where(referrals.c.referral_id == referral_id)
                    .values(status="matched", unmet_constraints=None))
    session.execute(update(mentors).where(mentors.c.mentor_id == mentor.mentor_id)
                    .values(last_matched_at=utcnow()))
    publish(uow, MatchMade(match_id=match_id, referral_id=referral_id,
                            mentor_id=mentor.mentor_id, org=mentor.org, matched_on=today,
                            days_from_referral=max(0, (today - row.referred_on).days),
                            waitlisted=row.waitlisted), row.subject_id)
    return {"status": "matched", "match_id": match_id, "mentor_id": mentor.mentor_id}


def match_waitlist(uow: UnitOfWork, today: date, rules: EligibilityRules,
                   org: str | None = None) -> list[str]:
    """Try every waitlisted referral (to ``org``, or to any organisation) in referral order,
    each with its receiving organisation's mentors only, except those whose referrer withdrew
    sharing with the receiver; returns the referrals matched."""
    query = select(referrals.c.referral_id).where(
        referrals.c.status == "waitlisted", referrals.c.to_org.is_not(None),
        # a receiver that lost the details (sharing withdrawn) is not handed the person
        or_(referrals.c.sharing_withdrawn.is_(False),
            referrals.c.to_org == referrals.c.referred_by_org))
    if org is not None:
        query = query.where(referrals.c.to_org == org)
    waiting = uow.session.execute(query.order_by(referrals.c.seq)).scalars().all()
    return [rid for rid in waiting if match(uow, rid, today, rules)["status"] == "matched"]


def _intake_rows(session: Session, org: str, status: str) -> list[Any]:
    """Referrals sent to ``org`` in ``status``, in referral order."""
    return list(session.execute(select(referrals).where(
        referrals.c.to_org == org, referrals.c.status == status).order_by(referrals.c.seq)))


def referral_view(session: Session, row: Any, cipher: PersonalDataCipher,
                  records: RecordCipher, show_safe_contact: bool, viewer_org: str
                  ) -> dict[str, Any]:
    """A referral; safe-contact details only when asked (the receiver's coordinators), and
    the match (which mentor, when) only to the receiving organisation: a referrer elsewhere
    sees the status, never whom the person meets."""
    active = match_of(session, row.referral_id)
    # an erased person's kept safe contact is the DPO's (the referral is de-identified)
    contact = (safeguarding.referral_contact(row, cipher, records)
               if show_safe_contact and row.subject_id else None)
    return {
        "id": row.referral_id, "subject_id": row.subject_id,
        "referred_by_org": row.referred_by_org, "to_org": row.to_org,
        "referred_on": row.referred_on.isoformat(),
        "preferences": {"mentor_gender": row.mentor_gender, "language": row.language,
                        "mode": row.mode, "borough": row.borough},
        "status": row.status,
        "unmet_constraints": row.unmet_constraints.split(",") if row.unmet_constraints else [],
        "match_id": active.match_id if active and viewer_org == row.to_org else None,
        "mentor_id": active.mentor_id if active and viewer_org == row.to_org else None,
        "safe_contact": contact,
    }


# --- sessions, concerns, outcomes, endings ------------------------------------------------

def require_live(keys: LiveKeys, referral: Any) -> None:
    """Raise ``KeyShredded`` when the referral's person is erased: writes about them stop the
    moment their key is shredded, before the cascade reaches this service."""
    if referral.subject_id is None:
        raise KeyShredded()
    keys.live_key(referral.subject_id)


def match_row(session: Session, match_id: str, org: str | None) -> Any:
    """A match whose mentor belongs to ``org`` (any when None), or ``NotFound``."""
    query = select(matches).where(matches.c.match_id == match_id)
    if org is not None:
        query = query.where(matches.c.org == org)
    row = session.execute(query).first()
    if row is None:
        raise NotFound("match")
    return row


def log_session(uow: UnitOfWork, keys: LiveKeys, cipher: PersonalDataCipher,
                records: RecordCipher, registry: SafeguardingRegistry, command: LogSession,
                caller: Principal, intervention: Intervention) -> dict[str, Any]:
    """Log a session for a caller who may record on the match (see ``write_session``); its
    components must be among the configured ones."""
    unknown = intervention.unknown_components(command.components)
    if unknown:
        raise UnknownCodes("components", unknown, intervention.components)
    check_recordable(uow.session, keys, command.match_id, caller)
    return write_session(uow, cipher, records, registry, command, caller.org,
                         raised_by=caller.subject)


def write_session(uow: UnitOfWork, cipher: PersonalDataCipher, records: RecordCipher,
                  registry: SafeguardingRegistry, command: LogSession, org: str,
                  raised_by: str | None = None) -> dict[str, Any]:
    """Log a session of an active match; a concern goes on the Trust's queue at once, its
    details sealed under the service's records key (kept through erasure, for the DPO)."""
    session = uow.session
    found = match_row(session, command.match_id, org)
    if found.status != "active":
        raise NotActive("the match has ended: sessions are logged on active matches only")
    referral = referral_row(session, found.referral_id)
    session_id = f"ses_{uuid.uuid4().hex}"
    session.execute(mentoring_sessions.insert().values(
        session_id=session_id, match_id=found.match_id, held_on=command.held_on,
        duration_minutes=command.duration_minutes, mode=command.mode,
        attendance=command.attendance, safeguarding_concern=command.safeguarding_concern,
        recorded_by_org=org, components=_csv(command.components) or None))
    publish(uow, SessionLogged(
        session_id=session_id, match_id=found.match_id, org=found.org, held_on=command.held_on,
        duration_minutes=command.duration_minutes, mode=command.mode,
        attendance=command.attendance, safeguarding_concern=command.safeguarding_concern),
        referral.subject_id)
    if command.components:
        publish(uow, SessionComponentsRecorded(
            session_id=session_id, match_id=found.match_id, org=found.org,
            held_on=command.held_on, components=tuple(command.components)),
            referral.subject_id)
    concern_id = None
    if command.safeguarding_concern and referral.subject_id is not None:
        concern_id = safeguarding.put_on_queue(uow, cipher, records, safeguarding.Concern(
            subject_id=referral.subject_id, org=found.org, raised_on=command.held_on,
            details=command.concern_details or "", raised_by=raised_by,
            referral_id=referral.referral_id, match_id=found.match_id, session_id=session_id),
            safeguarding.pseudonym_of(registry, referral.subject_id))["id"]
    return {"id": session_id, "match_id": found.match_id, "held_on": command.held_on.isoformat(),
            "duration_minutes": command.duration_minutes, "mode": command.mode,
            "attendance": command.attendance, "components": command.components,
            "safeguarding_concern": command.safeguarding_concern,
            "safeguarding_concern_id": concern_id}


def record_outcome(uow: UnitOfWork, keys: LiveKeys, command: RecordOutcome,
                   caller: Principal, today: date) -> dict[str, Any]:
    """Record an outcome measure for a caller who may record on the match."""
    check_recordable(uow.session, keys, command.match_id, caller)
    return write_outcome(uow, command, caller.org, today)


def write_outcome(uow: UnitOfWork, command: RecordOutcome, org: str, today: date
                  ) -> dict[str, Any]:
    """Score an outcome measure and record it."""
    session = uow.session
    found = match_row(session, command.match_id, org)
    referral = referral_row(session, found.referral_id)
    if command.timepoint in FOLLOW_UPS:
        _check_follow_up(session, found, command.timepoint)
    scored = score(command.instrument, command.items)
    outcome_id = f"out_{uuid.uuid4().hex}"
    recorded_on = command.recorded_on or today
    session.execute(outcomes.insert().values(
        outcome_id=outcome_id, match_id=found.match_id, timepoint=command.timepoint,
        instrument=command.instrument, items=_csv(str(i) for i in command.items),
        raw_score=scored.raw, metric_score=scored.metric, recorded_on=recorded_on))
    fields = {"outcome_id": outcome_id, "match_id": found.match_id, "org": found.org,
              "recorded_on": recorded_on, "timepoint": command.timepoint,
              "instrument": command.instrument, "items": tuple(command.items),
              "raw_score": scored.raw, "metric_score": scored.metric}
    model = FollowUpRecorded if command.timepoint in FOLLOW_UPS else OutcomeRecorded
    publish(uow, model.model_validate(fields), referral.subject_id)
    return {"id": outcome_id, "match_id": found.match_id, "timepoint": command.timepoint,
            "instrument": command.instrument, "raw_score": scored.raw,
            "metric_score": scored.metric, "recorded_on": recorded_on.isoformat()}


def _check_follow_up(session: Session, match: Any, timepoint: str) -> None:
    """A timed follow-up comes after the exit (the match has ended), once per timepoint."""
    if match.status != "ended":
        raise NotActive(f"a {timepoint} follow-up is after the exit: the match has not ended")
    taken = session.execute(select(outcomes.c.outcome_id).where(
        outcomes.c.match_id == match.match_id, outcomes.c.timepoint == timepoint)).first()
    if taken is not None:
        raise NotActive(f"the {timepoint} follow-up of this match is already recorded")


def adopt_partner_record(uow: UnitOfWork, keys: LiveKeys, cipher: PersonalDataCipher,
                         records: RecordCipher, registry: SafeguardingRegistry,
                         command: LogSession | RecordOutcome, org: str, subject: str | None,
                         today: date) -> dict[str, Any]:
    """Record a session or outcome from ``org``'s case system on a match of ``org``'s
    (else ``NotFound``), about its mentee (``subject``, when the event names one, else
    ``NotTheMentee``), who is not erased (else ``KeyShredded``)."""
    found = match_row(uow.session, command.match_id, org)
    referral = referral_row(uow.session, found.referral_id)
    if subject is not None and subject != referral.subject_id:
        raise NotTheMentee("subject: is not the mentee of this match")
    require_live(keys, referral)
    if isinstance(command, LogSession):
        return write_session(uow, cipher, records, registry, command, org)
    return write_outcome(uow, command, org, today)


def end_match(uow: UnitOfWork, keys: LiveKeys, cipher: PersonalDataCipher, match_id: str,
              command: EndMatch, caller: Principal, today: date, rules: EligibilityRules
              ) -> dict[str, Any]:
    """End a match, for a caller who may record on it; the mentor's room goes to the
    caller's organisation's waitlist."""
    check_recordable(uow.session, keys, match_id, caller)
    ended = end_active_match(uow, cipher, match_id, caller.org, command, today)
    match_waitlist(uow, today, rules, caller.org)
    return ended


def end_active_match(uow: UnitOfWork, cipher: PersonalDataCipher, match_id: str,
                     org: str | None, command: EndMatch, today: date) -> dict[str, Any]:
    """End a match (planned or not); the mentor's room goes to the waitlist."""
    session = uow.session
    found = match_row(session, match_id, org)
    _lock_mentors(session, found.org)  # in the order matching takes its locks
    if found.status != "active":
        raise NotActive("the match has already ended")
    referral = referral_row(session, found.referral_id)
    ended_on = command.ended_on or today
    reason_block = None
    if command.reason and referral.subject_id:
        # after erasure the key is gone: the reason is then simply not kept
        with contextlib.suppress(KeyShredded):
            reason_block = cipher.seal(referral.subject_id, MentoringEnded.event_type,
                                       {"reason": command.reason})
    session.execute(update(matches).where(matches.c.match_id == match_id).values(
        status="ended", ended_on=ended_on, planned=command.planned,
        end_reason_sealed=reason_block.model_dump_json().encode() if reason_block else None))
    session.execute(update(referrals).where(referrals.c.referral_id == found.referral_id)
                    .values(status="ended"))
    publish(uow, MentoringEnded(match_id=match_id, org=found.org, ended_on=ended_on,
                                 planned=command.planned, personal=reason_block),
             referral.subject_id)
    if command.feedback is not None:
        _record_feedback(uow, cipher, found, referral.subject_id, command, ended_on)
    return {"match_id": match_id, "status": "ended", "planned": command.planned,
            "ended_on": ended_on.isoformat(), "feedback_given": command.feedback is not None}


def _record_feedback(uow: UnitOfWork, cipher: PersonalDataCipher, match: Any,
                     subject_id: str | None, command: EndMatch, given_on: date) -> None:
    """Keep the mentee's feedback at the ending, the comment sealed under their data key."""
    feedback = command.feedback
    assert feedback is not None
    comment = None
    if feedback.comment and subject_id:
        with contextlib.suppress(KeyShredded):  # after erasure the comment is not kept
            comment = cipher.seal(subject_id, MenteeFeedbackGiven.event_type,
                                  {"comment": feedback.comment})
    uow.session.execute(mentee_feedback.insert().values(
        match_id=match.match_id, given_on=given_on, helped=feedback.helped,
        made_worse=feedback.made_worse,
        comment_sealed=comment.model_dump_json().encode() if comment else None))
    publish(uow, MenteeFeedbackGiven(match_id=match.match_id, org=match.org, given_on=given_on,
                                     helped=feedback.helped, made_worse=feedback.made_worse,
                                     personal=comment), subject_id)
