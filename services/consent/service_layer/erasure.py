"""Erasure requests (UK GDPR Art. 17): filed with an immediate withdrawal, decided once by the
holding organisation's DPO, and tracked through every service's erasure-applied.

Filing changes nothing but the withdrawal and the request, and answers the same whoever else
holds the person. Approval erases the person everywhere when no other organisation holds them
independently of the decider (``scope`` ``subject``: the data key and every identifier mapping
are destroyed), otherwise only the deciding organisation's relationship and consents
(``scope`` ``organisation``; the key stays). ``scope`` is shown to the deciding DPO alone, and
their view is otherwise the same either way. Reasons are sealed under consent's records key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from services.consent.adapters.tables import (
    consent_changes,
    erasure_requests,
    safe_contacts,
    subject_orgs,
    subjects,
    withdrawal_acks,
    withdrawals,
)
from services.consent.domain import requests
from services.consent.domain.requests import Decision, ErasureStatus
from services.consent.service_layer import consents
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.ports import SubjectKeys
from services.consent.service_layer.subjects import (
    FORGOTTEN_ON_ERASURE,
    others_hold_independently,
)
from shared.auth import Principal
from shared.crypto import RecordCipher
from shared.db import UnitOfWork, utcnow
from shared.events.cascade import ErasureApplied
from shared.events.consent import ErasureRequested, SubjectKeyShredded
from shared.events.vocabulary import (
    ERASURE_ACKNOWLEDGED_BY,
    ConsentMethod,
    ErasureScope,
    RetainedKind,
)

DECISION_REASON = "decision-reason"
EXTENSION_REASON = "extension-reason"


class ErasureRequestNotFound(LookupError):
    """No erasure request has this id (or none the caller's organisation filed)."""


@dataclass(frozen=True)
class Filed:
    """A withdrawal recorded at once, with the erasure request filed beside it."""

    withdrawal_id: str
    erasure_request_id: str


@dataclass(frozen=True)
class Decided:
    """What a decision did: ``scrub`` names the tables whose old row versions must be
    scrubbed from disk once the decision has committed."""

    view: dict[str, Any]
    scrub: tuple[str, ...]


def request_erasure(uow: UnitOfWork, subject_id: str, requested: list[str],
                    method: ConsentMethod, caller: Principal,
                    deadline_seconds: float, recorded_by: str | None = None,
                    recipients: tuple[str, ...] | None = None, *, trail: AuditTrail) -> Filed:
    """Withdraw the caller's organisation's consents at once (Art. 7(3)) and file an erasure
    request for its DPO to decide (erasure implies withdrawal)."""
    withdrawal_id = consents.withdraw(uow, subject_id, requested, True, method, caller,
                                      deadline_seconds, recorded_by, recipients, trail=trail)
    now = utcnow()
    request_id = f"er_{uuid.uuid4().hex}"
    uow.session.execute(insert(erasure_requests).values(
        erasure_request_id=request_id, subject_id=subject_id, org=caller.org,
        withdrawal_id=withdrawal_id, status=ErasureStatus.AWAITING.value, requested_at=now,
        due_at=requests.due_at(now)))
    trail.record(uow, caller, "erasure-requested", subject_id, erasure_request_id=request_id,
                 withdrawal_id=withdrawal_id)
    return Filed(withdrawal_id, request_id)


def _locked(session: Session, request_id: str, org: str) -> Any:
    row = session.execute(select(erasure_requests).where(
        erasure_requests.c.erasure_request_id == request_id,
        erasure_requests.c.org == org).with_for_update()).first()
    if row is None:
        raise ErasureRequestNotFound()
    return row


def decide(uow: UnitOfWork, keys: SubjectKeys, records: RecordCipher, request_id: str,
           decision: Decision, reason: str | None, retained: Sequence[RetainedKind] | None,
           caller: Principal, *, trail: AuditTrail) -> Decided:
    """The DPO's decision, once: refuse (nothing else changes) or approve (erase and tell
    every service)."""
    session = uow.session
    row = _locked(session, request_id, caller.org)
    kept = requests.check_decision(row.status, decision, reason, retained)
    now = utcnow()
    status = requests.status_after_decision(decision)
    scope: ErasureScope | None = None
    if status is ErasureStatus.IN_PROGRESS:
        # the person's row is locked before the scope is chosen: two organisations' DPOs
        # deciding at once would otherwise each see the other's relationship, both choose
        # ``organisation``, and leave the key of a person nobody holds any more
        session.execute(select(subjects.c.subject_id).where(
            subjects.c.subject_id == row.subject_id).with_for_update())
        scope = "organisation" if others_hold_independently(
            session, row.subject_id, caller.org) else "subject"
    session.execute(update(erasure_requests).where(
        erasure_requests.c.erasure_request_id == request_id).values(
        status=status.value, decision=decision, decided_by=caller.subject, decided_at=now,
        decision_reason_sealed=records.seal(f"{request_id}:{DECISION_REASON}",
                                            {"reason": reason}) if reason else None,
        scope=scope, retained=",".join(kept) or None))
    trail.record(uow, caller, "erasure-decided", row.subject_id, erasure_request_id=request_id,
                 decision=decision, retained=",".join(kept) or None)
    scrub: tuple[str, ...] = ()
    if scope is not None:
        scrub = _erase(uow, keys, row, scope, kept, caller, now, trail)
    return Decided(view(session, records, request_id, caller.org), scrub)


def _erase(uow: UnitOfWork, keys: SubjectKeys, row: Any, scope: ErasureScope,
           kept: tuple[RetainedKind, ...], caller: Principal, now: datetime,
           trail: AuditTrail) -> tuple[str, ...]:
    """Tell every service to erase, erase what consent holds, and acknowledge it."""
    session, subject_id = uow.session, row.subject_id
    withdrawal = session.execute(select(withdrawals).where(
        withdrawals.c.withdrawal_id == row.withdrawal_id)).one()
    purposes = tuple(withdrawal.purposes.split(","))
    consents.publish(uow, ErasureRequested(
        withdrawal_id=row.withdrawal_id, purposes=purposes, method=withdrawal.method,
        org=caller.org, erasure_request_id=row.erasure_request_id, scope=scope,
        retained=kept), subject_id)
    if scope == "organisation":
        session.execute(delete(consent_changes).where(
            consent_changes.c.subject_id == subject_id, consent_changes.c.org == caller.org))
        session.execute(delete(safe_contacts).where(
            safe_contacts.c.subject_id == subject_id, safe_contacts.c.org == caller.org))
        session.execute(delete(subject_orgs).where(
            subject_orgs.c.subject_id == subject_id, subject_orgs.c.org == caller.org))
        scrubbed: tuple[str, ...] = ("consent_changes", "safe_contacts", "subject_orgs")
        if session.execute(select(subject_orgs.c.org).where(
                subject_orgs.c.subject_id == subject_id).limit(1)).first() is None:
            # nobody holds the person any more: erase them as for scope subject
            scrubbed += _shred(uow, keys, subject_id, row.withdrawal_id, now)
    else:
        scrubbed = _shred(uow, keys, subject_id, row.withdrawal_id, now)
    trail.record(uow, caller, "subject-erased", subject_id,
                 erasure_request_id=row.erasure_request_id)
    session.execute(insert(withdrawal_acks).values(
        withdrawal_id=row.withdrawal_id, service="consent", kind=ErasureApplied.event_type,
        applied_at=now, received_at=now, retained_records=0))
    consents.publish(uow, ErasureApplied(service="consent", withdrawal_id=row.withdrawal_id,
                                         purposes=purposes, applied_at=now,
                                         retained_records=0), subject_id)
    return scrubbed


def _shred(uow: UnitOfWork, keys: SubjectKeys, subject_id: str, withdrawal_id: str,
           now: datetime) -> tuple[str, ...]:
    """Destroy the person's data key, every identifier mapping and everything sealed under
    the key that consent keeps (``FORGOTTEN_ON_ERASURE``, every organisation's safe contact),
    and tell every service the key is gone; returns the tables to scrub."""
    session = uow.session
    key_id = keys.shred(session, subject_id)
    session.execute(update(subjects).where(subjects.c.subject_id == subject_id).values(
        **FORGOTTEN_ON_ERASURE, erased_at=now))
    session.execute(delete(safe_contacts).where(safe_contacts.c.subject_id == subject_id))
    if key_id is not None:
        consents.publish(uow, SubjectKeyShredded(key_id=key_id, withdrawal_id=withdrawal_id),
                         subject_id)
    return ("data_keys", "subjects", "safe_contacts")


def extend(uow: UnitOfWork, records: RecordCipher, request_id: str, months: int, reason: str,
           caller: Principal, *, trail: AuditTrail) -> dict[str, Any]:
    """Extend the deadline once, by one or two further months, saying why."""
    row = _locked(uow.session, request_id, caller.org)
    due = requests.extended_due_at(row.status, row.due_at, row.extended_months, months, reason)
    uow.session.execute(update(erasure_requests).where(
        erasure_requests.c.erasure_request_id == request_id).values(
        due_at=due, extended_months=months,
        extension_reason_sealed=records.seal(f"{request_id}:{EXTENSION_REASON}",
                                             {"reason": reason})))
    trail.record(uow, caller, "erasure-extended", row.subject_id,
                 erasure_request_id=request_id, months=months)
    return view(uow.session, records, request_id, caller.org)


def acknowledged(uow: UnitOfWork, withdrawal_id: str) -> bool:
    """After an erasure-applied: complete the erasure request filed with ``withdrawal_id``
    once every service has acknowledged; returns whether this one completed it."""
    session = uow.session
    row = session.execute(select(erasure_requests).where(
        erasure_requests.c.withdrawal_id == withdrawal_id).with_for_update()).first()
    if row is None or row.status != ErasureStatus.IN_PROGRESS:
        return False
    acks = _acks(session, withdrawal_id)
    if not acks.keys() >= ERASURE_ACKNOWLEDGED_BY:
        return False
    session.execute(update(erasure_requests).where(
        erasure_requests.c.erasure_request_id == row.erasure_request_id).values(
        status=ErasureStatus.COMPLETE.value,
        completed_at=max(a.applied_at for a in acks.values())))
    return True


def _acks(session: Session, withdrawal_id: str) -> dict[str, Any]:
    return {ack.service: ack for ack in session.execute(select(withdrawal_acks).where(
        withdrawal_acks.c.withdrawal_id == withdrawal_id,
        withdrawal_acks.c.kind == ErasureApplied.event_type))}


def _reason(records: RecordCipher, row: Any, which: str, sealed: bytes | None) -> str | None:
    if sealed is None:
        return None
    return str(records.open(f"{row.erasure_request_id}:{which}", sealed)["reason"])


def _view(session: Session, records: RecordCipher, row: Any) -> dict[str, Any]:
    decided = row.status not in (ErasureStatus.AWAITING, ErasureStatus.REFUSED)
    acks = _acks(session, row.withdrawal_id) if decided else {}
    services = {service: {
        "status": "applied" if service in acks else "pending",
        "applied_at": acks[service].applied_at.isoformat() if service in acks else None,
        "retained_records": acks[service].retained_records if service in acks else None,
    } for service in sorted(ERASURE_ACKNOWLEDGED_BY)} if decided else {}
    kept = row.retained.split(",") if row.retained else []
    what_was_retained = [dict(item) for item in requests.ALWAYS_RETAINED] + [
        {"kind": kind, "lawful_basis": "kept by the DPO's decision (see reason)"}
        for kind in kept]
    return {
        "erasure_request_id": row.erasure_request_id, "subject_id": row.subject_id,
        "withdrawal_id": row.withdrawal_id, "status": row.status,
        "requested_at": row.requested_at.isoformat(), "due_at": row.due_at.isoformat(),
        "overdue": requests.is_overdue(row.status, row.due_at, utcnow()),
        "extended": bool(row.extended_months),
        "extension": {"months": row.extended_months,
                      "reason": _reason(records, row, EXTENSION_REASON,
                                        row.extension_reason_sealed)}
        if row.extended_months else None,
        "decision": row.decision,
        "reason": _reason(records, row, DECISION_REASON, row.decision_reason_sealed),
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "scope": row.scope, "retained": kept,
        "what_was_retained": what_was_retained if decided else [],
        "services": services,
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
    }


def view(session: Session, records: RecordCipher, request_id: str, org: str
         ) -> dict[str, Any]:
    """An erasure request the organisation filed, as its DPO sees it."""
    row = session.execute(select(erasure_requests).where(
        erasure_requests.c.erasure_request_id == request_id,
        erasure_requests.c.org == org)).first()
    if row is None:
        raise ErasureRequestNotFound()
    return _view(session, records, row)


def read(uow: UnitOfWork, records: RecordCipher, request_id: str, caller: Principal, *,
         trail: AuditTrail) -> dict[str, Any]:
    """An erasure request the caller's organisation filed, for its DPO (the read is
    audited)."""
    found = view(uow.session, records, request_id, caller.org)
    trail.record(uow, caller, "erasure-request-read", found["subject_id"],
                 erasure_request_id=request_id)
    return found


def listed(uow: UnitOfWork, records: RecordCipher, caller: Principal, status: ErasureStatus,
           *, trail: AuditTrail) -> list[dict[str, Any]]:
    """The caller's organisation's erasure requests in one status, the soonest due first,
    for its DPO (the listing is audited)."""
    rows = with_status(uow.session, records, caller.org, status)
    trail.record(uow, caller, "erasure-requests-listed", status=status.value, listed=len(rows))
    return rows


def with_status(session: Session, records: RecordCipher, org: str, status: ErasureStatus,
                limit: int = 500) -> list[dict[str, Any]]:
    """The organisation's erasure requests in one status, the soonest due first."""
    rows = session.execute(select(erasure_requests).where(
        erasure_requests.c.org == org, erasure_requests.c.status == status.value)
        .order_by(erasure_requests.c.due_at).limit(limit)).all()
    return [_view(session, records, row) for row in rows]


def about(session: Session, records: RecordCipher, subject_id: str, org: str
          ) -> list[dict[str, Any]]:
    """The organisation's erasure requests about one person, oldest first, for the person's
    copy of their data: without ``scope``, which would tell whoever reads the copy whether
    another organisation holds the person."""
    rows = session.execute(select(erasure_requests).where(
        erasure_requests.c.org == org, erasure_requests.c.subject_id == subject_id)
        .order_by(erasure_requests.c.requested_at)).all()
    views = [_view(session, records, row) for row in rows]
    for view_ in views:
        view_.pop("scope")
    return views


def count_awaiting(session: Session) -> int:
    """Erasure requests waiting for a DPO's decision (every organisation)."""
    return int(session.execute(select(func.count()).select_from(erasure_requests).where(
        erasure_requests.c.status == ErasureStatus.AWAITING.value)).scalar_one())


def count_overdue(session: Session, now: datetime) -> int:
    """Erasure requests past their deadline with no decision (every organisation)."""
    return int(session.execute(select(func.count()).select_from(erasure_requests).where(
        erasure_requests.c.status == ErasureStatus.AWAITING.value,
        erasure_requests.c.due_at < now)).scalar_one())
