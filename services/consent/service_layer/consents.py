"""Consent use cases: grant, withdraw, and the tracker's acknowledgements.

Every change writes its state, its audit entry and its events in one transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.orm import Session

from services.consent.adapters.tables import (
    consent_changes,
    subjects,
    withdrawal_acks,
    withdrawals,
)
from services.consent.domain.purposes import (
    check_offered,
    check_recipients,
    expand_purposes,
    required_services,
)
from services.consent.domain.tracker import CascadeStatus, Transition, WithdrawalCascade
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.subjects import establish, has_relationship
from shared.auth import Principal
from shared.crypto import PersonalDataCipher
from shared.db import UnitOfWork, utcnow
from shared.events.cascade import CascadeAcknowledgement, WithdrawalApplied
from shared.events.consent import (
    ConsentGranted,
    ConsentWithdrawn,
    WithdrawalCompleted,
    WithdrawalOverdue,
)
from shared.events.envelope import CloudEvent, EventPayload
from shared.events.vocabulary import PURPOSES, ConsentMethod, Purpose, ServiceName
from shared.kafka.topics import CASCADE_ACKS, events_topic
from shared.metrics import WITHDRAWAL_COMPLETION

SOURCE = "/peerlink/consent"


class SubjectNotFound(LookupError):
    """No subject has this reference."""


class SubjectErased(RuntimeError):
    """The person was erased; nothing more can be recorded about them."""


class WithdrawalNotFound(LookupError):
    """No withdrawal has this id (or none the caller's organisation recorded)."""


class ForeignAcknowledgement(PermissionError):
    """An acknowledgement whose CloudEvents source is not the service it names."""


class NoSharing(PermissionError):
    """The holder has no active partner-sharing naming the receiving organisation."""


class NotAPartner(ValueError):
    """A referral to an organisation that is not a configured DVA partner."""


def publish(uow: UnitOfWork, payload: EventPayload, subject_id: str) -> None:
    """Append one of consent's events (an acknowledgement goes to the cascade topic)."""
    topic = CASCADE_ACKS if payload.publisher == "any" else events_topic("consent")
    uow.publish(CloudEvent.wrap(payload, source=SOURCE, subject=subject_id), topic,
                aggregate_type="consent")


def require_subject(session: Session, subject_id: str, caller: Principal) -> Any:
    """The subject's row, if the caller's organisation has a relationship with the person.

    A DPO too acts only for their own organisation. A person the caller's organisation has no
    relationship with is indistinguishable from an unknown reference. A service acting alone
    belongs to no organisation: the endpoint admitted it (``SERVICE_ACCESS``) and names the
    organisation it asks about.
    """
    row = session.execute(select(subjects).where(subjects.c.subject_id == subject_id)).first()
    if row is None:
        raise SubjectNotFound()
    if caller.is_service:
        return row
    if not has_relationship(session, subject_id, caller.org):
        raise SubjectNotFound()
    return row


def recordable_subject(session: Session, subject_id: str, caller: Principal) -> Any:
    """The subject's row (``require_subject``); ``SubjectErased`` once the person was erased,
    since nothing more may be recorded about them."""
    row = require_subject(session, subject_id, caller)
    if row.erased_at is not None:
        raise SubjectErased()
    return row


def grant(uow: UnitOfWork, cipher: PersonalDataCipher, subject_id: str, purpose: Purpose,
          method: ConsentMethod, recorded_by: str, caller: Principal,
          recipients: tuple[str, ...] = (), *, partners: frozenset[str],
          trail: AuditTrail, offered: tuple[Purpose, ...]) -> dict[str, Any]:
    """Record consent to one of the ``offered`` purposes for the caller's organisation's
    records; partner-sharing names the organisations those records may be shared with (other
    configured DVA ``partners``: ``InvalidRecipients`` otherwise, and ``PurposeNotOffered``,
    before anything else is checked)."""
    check_offered(purpose, offered)
    check_recipients(purpose, recipients, caller.org, partners)
    recordable_subject(uow.session, subject_id, caller)
    changes = [_change(uow, subject_id, purpose, "granted", method, recorded_by, caller.org,
                       recipient=recipient) for recipient in (recipients or (None,))]
    change = dict(changes[0], recipients=list(recipients))
    change.pop("recipient", None)
    personal = cipher.seal(subject_id, ConsentGranted.event_type, {"recorded_by": recorded_by})
    publish(uow, ConsentGranted(consent_id=change["change_id"], purpose=purpose, method=method,
                                 org=caller.org, recipients=recipients, personal=personal),
             subject_id)
    trail.record(uow, caller, "consent-granted", subject_id, purpose=purpose, method=method,
                 recipients=",".join(recipients) or None)
    return change


def _change(uow: UnitOfWork, subject_id: str, purpose: Purpose, action: str, method: str,
            recorded_by: str | None, org: str, withdrawal_id: str | None = None,
            recipient: str | None = None) -> dict[str, Any]:
    change = {"change_id": f"cc_{uuid.uuid4().hex}", "subject_id": subject_id,
              "purpose": purpose, "action": action, "method": method,
              "recorded_by": recorded_by, "org": org, "at": utcnow(),
              "withdrawal_id": withdrawal_id, "recipient": recipient}
    uow.session.execute(insert(consent_changes).values(**change))
    return change


def consent_state(session: Session, subject_id: str, holder: str) -> dict[str, Any]:
    """The holder organisation's consents: the current state per purpose, the organisations
    partner-sharing currently names, and the holder's own history (who, when, how).

    Nothing recorded by another organisation is shown, so the view reveals nobody else's
    relationship with the person.
    """
    history = [dict(r._mapping) for r in session.execute(
        select(consent_changes).where(consent_changes.c.subject_id == subject_id,
                                      consent_changes.c.org == holder)
        .order_by(consent_changes.c.seq))]
    current: dict[str, str] = dict.fromkeys(PURPOSES, "not-recorded")
    recipients: dict[str, str] = {}
    for change in history:
        if change["purpose"] == "partner-sharing" and change["recipient"]:
            recipients[change["recipient"]] = change["action"]
        else:
            current[change["purpose"]] = change["action"]
    if recipients:
        current["partner-sharing"] = "granted" if "granted" in recipients.values() \
            else "withdrawn"
    for change in history:
        change.pop("seq", None)
    return {"subject_id": subject_id, "org": holder, "purposes": current,
            "sharing_recipients": sorted(r for r, a in recipients.items() if a == "granted"),
            "history": history}


def own_consents(session: Session, subject_id: str, caller: Principal) -> dict[str, Any]:
    """The caller's organisation's consents (``consent_state``), for a person it has a
    relationship with."""
    require_subject(session, subject_id, caller)
    return consent_state(session, subject_id, caller.org)


def holder_consents(session: Session, subject_id: str, holder: str, caller: Principal
                    ) -> dict[str, Any]:
    """One holder organisation's consents, and whether it has a relationship with the person,
    for a service deciding what it may do for that organisation."""
    require_subject(session, subject_id, caller)
    state = consent_state(session, subject_id, holder)
    return {"relationship": has_relationship(session, subject_id, holder),
            "purposes": state["purposes"], "sharing_recipients": state["sharing_recipients"]}


def establish_referral(uow: UnitOfWork, subject_id: str, to_org: str, caller: Principal, *,
                       partners: frozenset[str], trail: AuditTrail) -> bool:
    """The receiving organisation (one of the DVA ``partners``, else ``NotAPartner``) gains a
    relationship through a referral by ``caller``, whose organisation is the holder: it needs
    a live person the holder has a relationship with, and the holder's partner-sharing
    naming the receiver (``NoSharing``); returns whether it is new."""
    if to_org not in partners:
        raise NotAPartner()
    holder = caller.org
    recordable_subject(uow.session, subject_id, caller)
    if to_org != holder and to_org not in consent_state(
            uow.session, subject_id, holder)["sharing_recipients"]:
        raise NoSharing()
    new = establish(uow, subject_id, to_org, "referral", referred_by=holder)
    # the same entry whether or not the receiver already knew the person: the referrer's DPO
    # reads it, and a difference would tell them the receiver did
    trail.record(uow, caller, "referral-made", subject_id, org=to_org)
    return new


def withdraw(uow: UnitOfWork, subject_id: str, requested: list[str],
             erasure: bool, method: ConsentMethod, caller: Principal,
             deadline_seconds: float, recorded_by: str | None = None,
             recipients: tuple[str, ...] | None = None, *, trail: AuditTrail) -> str:
    """Record a withdrawal of the caller's organisation's consents, at once; returns the
    withdrawal id the cascade is tracked by. ``erasure`` says that an erasure request is filed
    with it (``erasure.request_erasure``): the withdrawal itself completes on the services'
    withdrawal-applied, whatever the DPO decides.

    Withdrawing partner-sharing stops sharing with ``recipients`` (every recipient when None);
    the event names the recipients that lost access.
    """
    purposes = expand_purposes(requested)
    recordable_subject(uow.session, subject_id, caller)
    active = consent_state(uow.session, subject_id, caller.org)["sharing_recipients"]
    lost: tuple[str, ...] = ()
    if "partner-sharing" in purposes:
        lost = tuple(sorted(active if recipients is None else set(recipients) & set(active)))
    withdrawal_id = f"wd_{uuid.uuid4().hex}"
    now = utcnow()
    required = required_services(purposes)
    uow.session.execute(insert(withdrawals).values(
        withdrawal_id=withdrawal_id, subject_id=subject_id, purposes=",".join(purposes),
        erasure=erasure, method=method, org=caller.org, required=",".join(sorted(required)),
        status=CascadeStatus.PENDING.value, requested_at=now,
        deadline_at=now + timedelta(seconds=deadline_seconds)))
    for purpose in purposes:
        for recipient in (lost or (None,)) if purpose == "partner-sharing" else (None,):
            _change(uow, subject_id, purpose, "withdrawn", method, recorded_by, caller.org,
                    withdrawal_id, recipient)
    publish(uow, ConsentWithdrawn(withdrawal_id=withdrawal_id, purposes=purposes,
                                   erasure=erasure, method=method, org=caller.org,
                                   recipients=lost), subject_id)
    trail.record(uow, caller, "consent-withdrawn", subject_id, withdrawal_id=withdrawal_id,
                 purposes=list(purposes), erasure=erasure, method=method,
                 recipients=",".join(lost) or None)
    return withdrawal_id


def _cascade(session: Session, row: Any) -> WithdrawalCascade:
    acks = session.execute(select(withdrawal_acks).where(
        withdrawal_acks.c.withdrawal_id == row.withdrawal_id)).all()
    cascade = WithdrawalCascade(
        required=frozenset(row.required.split(",")),
        requested_at=row.requested_at, deadline_at=row.deadline_at,
        status=CascadeStatus(row.status), completed_at=row.completed_at)
    for ack in acks:
        if ack.kind == WithdrawalApplied.event_type:
            cascade.acknowledged.setdefault(ack.service, ack.applied_at)
    return cascade


def acknowledge(uow: UnitOfWork, event: CloudEvent, ack: CascadeAcknowledgement) -> None:
    """Record a service's acknowledgement and complete the withdrawal when it is the last
    withdrawal-applied (an erasure-applied counts towards its erasure request instead).

    Only the service an acknowledgement names may send it: its source must be that service's
    (on Kafka, each service's principal is the only one allowed to publish that source; see
    deploy's ACLs), so one service cannot complete another's part of a cascade.
    """
    if event.source != f"/peerlink/{ack.service}":
        raise ForeignAcknowledgement()
    session = uow.session
    row = session.execute(select(withdrawals).where(
        withdrawals.c.withdrawal_id == ack.withdrawal_id).with_for_update()).first()
    if row is None:
        raise WithdrawalNotFound()
    exists = session.execute(select(withdrawal_acks.c.service).where(and_(
        withdrawal_acks.c.withdrawal_id == ack.withdrawal_id,
        withdrawal_acks.c.service == ack.service,
        withdrawal_acks.c.kind == event.type))).first()
    if exists is None:
        session.execute(insert(withdrawal_acks).values(
            withdrawal_id=ack.withdrawal_id, service=ack.service, kind=event.type,
            applied_at=ack.applied_at, received_at=utcnow(),
            retained_records=getattr(ack, "retained_records", None)))
    cascade = _cascade(session, row)
    transition = cascade.acknowledge(ack.service, ack.applied_at) \
        if event.type == WithdrawalApplied.event_type else Transition.NONE
    if transition is Transition.COMPLETED:
        _complete(uow, row, cascade)


def _complete(uow: UnitOfWork, row: Any, cascade: WithdrawalCascade) -> None:
    assert cascade.completed_at is not None
    WITHDRAWAL_COMPLETION.observe(
        max(0.0, (cascade.completed_at - row.requested_at).total_seconds()))
    uow.session.execute(update(withdrawals).where(
        withdrawals.c.withdrawal_id == row.withdrawal_id).values(
        status=CascadeStatus.COMPLETE.value, completed_at=cascade.completed_at))
    publish(uow, WithdrawalCompleted(
        withdrawal_id=row.withdrawal_id, purposes=tuple(row.purposes.split(",")),
        erasure=row.erasure, services=tuple(sorted(cascade.required)),
        requested_at=row.requested_at, completed_at=cascade.completed_at),
        row.subject_id)


def mark_overdue(uow: UnitOfWork, now: datetime) -> int:
    """Mark pending withdrawals past their deadline overdue; returns how many."""
    session = uow.session
    rows = session.execute(select(withdrawals).where(and_(
        withdrawals.c.status == CascadeStatus.PENDING.value,
        withdrawals.c.deadline_at <= now)).order_by(withdrawals.c.withdrawal_id)
        .with_for_update()).all()  # one lock order for every writer
    overdue = 0
    for row in rows:
        cascade = _cascade(session, row)
        if cascade.check_deadline(now) is not Transition.BECAME_OVERDUE:
            continue
        overdue += 1
        session.execute(update(withdrawals).where(
            withdrawals.c.withdrawal_id == row.withdrawal_id).values(
            status=CascadeStatus.OVERDUE.value))
        publish(uow, WithdrawalOverdue(
            withdrawal_id=row.withdrawal_id, purposes=tuple(row.purposes.split(",")),
            erasure=row.erasure, pending_services=tuple(sorted(cascade.pending)),
            requested_at=row.requested_at, deadline_at=row.deadline_at),
            row.subject_id)
    return overdue


def withdrawal_view(session: Session, withdrawal_id: str, org: str) -> dict[str, Any]:
    """A withdrawal the organisation recorded: its status and each required service's
    acknowledgement."""
    row = session.execute(select(withdrawals).where(
        withdrawals.c.withdrawal_id == withdrawal_id, withdrawals.c.org == org)).first()
    if row is None:
        raise WithdrawalNotFound()
    return _view(session, row)


def _view(session: Session, row: Any) -> dict[str, Any]:
    cascade = _cascade(session, row)
    services: dict[ServiceName, dict[str, Any]] = {}
    for service in sorted(cascade.required):
        applied = cascade.acknowledged.get(service)
        services[service] = {"status": "applied" if applied else "pending",
                             "applied_at": applied.isoformat() if applied else None}
    return {
        "withdrawal_id": row.withdrawal_id, "subject_id": row.subject_id,
        "purposes": row.purposes.split(","), "erasure": row.erasure, "method": row.method,
        "org": row.org,
        "status": row.status, "requested_at": row.requested_at.isoformat(),
        "deadline_at": row.deadline_at.isoformat(),
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
        "services": services,
    }


def count_with_status(session: Session, status: CascadeStatus) -> int:
    """How many withdrawals are in one status."""
    return int(session.execute(select(func.count()).select_from(withdrawals)
                               .where(withdrawals.c.status == status.value)).scalar_one())


def withdrawals_with_status(session: Session, status: str, org: str, limit: int = 500
                            ) -> list[dict[str, Any]]:
    """The organisation's withdrawals in one status, oldest first (``overdue`` is what needs
    a human)."""
    rows = session.execute(select(withdrawals).where(withdrawals.c.status == status,
                                                     withdrawals.c.org == org)
                           .order_by(withdrawals.c.requested_at).limit(limit)).all()
    return [_view(session, row) for row in rows]
