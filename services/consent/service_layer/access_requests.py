"""Subject access requests (UK GDPR Art. 15) and what consent exports for one.

A request is filed by staff (or the DPO) of an organisation with a relationship with the
person and answered within one calendar month by that organisation's DPO, who exports what
each service holds about the person for the organisation (``peerlink sar export``) and marks
the request complete.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from services.consent.adapters.tables import (
    subject_access_requests,
    subject_orgs,
    subjects,
    withdrawals,
)
from services.consent.domain import requests
from services.consent.domain.requests import AccessRequestStatus
from services.consent.service_layer import audit, consents, erasure, safe_contact
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.ports import SubjectKeys
from shared.auth import Principal
from shared.crypto import PersonalDataCipher, RecordCipher
from shared.db import Database, UnitOfWork, utcnow
from shared.events.envelope import EncryptedBlock


class AccessRequestNotFound(LookupError):
    """No subject access request has this id (or none the caller's organisation filed)."""


class AccessRequestComplete(RuntimeError):
    """The request was completed already."""


def _view(row: Any) -> dict[str, Any]:
    return {"request_id": row.request_id, "subject_id": row.subject_id,
            "status": row.status, "requested_at": row.requested_at.isoformat(),
            "due_at": row.due_at.isoformat(),
            "overdue": requests.is_overdue(row.status, row.due_at, utcnow()),
            "completed_at": row.completed_at.isoformat() if row.completed_at else None}


def file(uow: UnitOfWork, subject_id: str, caller: Principal, *, trail: AuditTrail
         ) -> dict[str, Any]:
    """File a request for the caller's organisation, due in one calendar month."""
    consents.recordable_subject(uow.session, subject_id, caller)
    now = utcnow()
    request_id = f"sar_{uuid.uuid4().hex}"
    uow.session.execute(insert(subject_access_requests).values(
        request_id=request_id, subject_id=subject_id, org=caller.org,
        status=AccessRequestStatus.OPEN.value, requested_at=now, due_at=requests.due_at(now)))
    trail.record(uow, caller, "subject-access-requested", subject_id, request_id=request_id)
    return view(uow.session, request_id, caller.org)


def _row(session: Session, request_id: str, org: str, *, lock: bool = False) -> Any:
    query = select(subject_access_requests).where(
        subject_access_requests.c.request_id == request_id,
        subject_access_requests.c.org == org)
    row = session.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise AccessRequestNotFound()
    return row


def view(session: Session, request_id: str, org: str) -> dict[str, Any]:
    """A request the organisation filed."""
    return _view(_row(session, request_id, org))


def read(uow: UnitOfWork, request_id: str, caller: Principal, *, trail: AuditTrail
         ) -> dict[str, Any]:
    """A request the caller's organisation filed, for its DPO (the read is audited)."""
    found = view(uow.session, request_id, caller.org)
    trail.record(uow, caller, "subject-access-request-read", found["subject_id"],
                 request_id=request_id)
    return found


def listed(uow: UnitOfWork, caller: Principal, status: AccessRequestStatus, *,
           trail: AuditTrail) -> list[dict[str, Any]]:
    """The caller's organisation's requests in one status, the soonest due first, for its
    DPO (the listing is audited)."""
    rows = with_status(uow.session, caller.org, status)
    trail.record(uow, caller, "subject-access-requests-listed", status=status.value,
                 listed=len(rows))
    return rows


def with_status(session: Session, org: str, status: AccessRequestStatus, limit: int = 500
                ) -> list[dict[str, Any]]:
    """The organisation's requests in one status, the soonest due first."""
    rows = session.execute(select(subject_access_requests).where(
        subject_access_requests.c.org == org,
        subject_access_requests.c.status == status.value)
        .order_by(subject_access_requests.c.due_at).limit(limit)).all()
    return [_view(row) for row in rows]


def complete(uow: UnitOfWork, request_id: str, caller: Principal, *, trail: AuditTrail
             ) -> dict[str, Any]:
    """Mark the request answered (once)."""
    row = _row(uow.session, request_id, caller.org, lock=True)
    if row.status == AccessRequestStatus.COMPLETE:
        raise AccessRequestComplete()
    uow.session.execute(update(subject_access_requests).where(
        subject_access_requests.c.request_id == request_id).values(
        status=AccessRequestStatus.COMPLETE.value, completed_at=utcnow()))
    trail.record(uow, caller, "subject-access-completed", row.subject_id,
                 request_id=request_id)
    return view(uow.session, request_id, caller.org)


def export_subject(database: Database, keys: SubjectKeys, records: RecordCipher,
                   subject_id: str, caller: Principal, *, trail: AuditTrail
                   ) -> dict[str, Any]:
    """What consent holds about a person the caller's organisation has a relationship with,
    for its DPO (``export``): the export is audited first, in its own transaction, so the
    copy shows it."""
    with database.unit_of_work() as uow:
        consents.require_subject(uow.session, subject_id, caller)
        trail.record(uow, caller, "subject-exported", subject_id)
    with database.read() as session:
        return export(session, keys, records, subject_id, caller.org)


def export(session: Session, keys: SubjectKeys, records: RecordCipher, subject_id: str,
           org: str) -> dict[str, Any]:
    """Everything consent holds about the person for ``org``, opened: the NHS number, when the
    organisation's relationship began (never when or by whom the person was first registered,
    which would tell of another organisation), its safe-contact copy, its consents and their
    history, its withdrawals, its erasure and access requests, and the audit trail's entries
    about the person by its people (who saw what)."""
    row = session.execute(select(subjects).where(subjects.c.subject_id == subject_id)).one()
    established_at = session.execute(select(subject_orgs.c.established_at).where(
        subject_orgs.c.subject_id == subject_id, subject_orgs.c.org == org)).scalar()
    contact_row = (safe_contact.own_copy(session, subject_id, org)
                   if row.erased_at is None else None)
    contact = None
    if contact_row is not None:
        contact = {"safe_contact": safe_contact.opened(session, keys, contact_row).model_dump(),
                   "updated_at": contact_row.updated_at.isoformat()}
    nhs_number = None
    if row.nhs_number_sealed is not None:
        opened = PersonalDataCipher(keys).open(
            subject_id, "subject.nhs_number",
            EncryptedBlock.model_validate_json(row.nhs_number_sealed))
        nhs_number = opened.get("nhs_number") if isinstance(opened, dict) else None
    withdrawn = session.execute(select(withdrawals.c.withdrawal_id).where(
        withdrawals.c.subject_id == subject_id, withdrawals.c.org == org)
        .order_by(withdrawals.c.requested_at)).scalars().all()
    access = session.execute(select(subject_access_requests).where(
        subject_access_requests.c.subject_id == subject_id,
        subject_access_requests.c.org == org)
        .order_by(subject_access_requests.c.requested_at)).all()
    return {
        "service": "consent", "subject_id": subject_id, "org": org,
        "nhs_number": nhs_number,
        "relationship_established_at": established_at.isoformat() if established_at else None,
        "safe_contact": contact,
        "erased_at": row.erased_at.isoformat() if row.erased_at else None,
        "consents": consents.consent_state(session, subject_id, org),
        "withdrawals": [consents.withdrawal_view(session, w, org) for w in withdrawn],
        "erasure_requests": erasure.about(session, records, subject_id, org),
        "subject_access_requests": [_view(r) for r in access],
        "audit": audit.entries(session, org, subject_id),
    }


def count_open(session: Session) -> int:
    """Subject access requests not yet answered (every organisation)."""
    return int(session.execute(select(func.count()).select_from(subject_access_requests)
                               .where(subject_access_requests.c.status
                                      == AccessRequestStatus.OPEN.value)).scalar_one())


def count_overdue(session: Session, now: datetime) -> int:
    """Subject access requests past their deadline and not answered (every organisation)."""
    return int(session.execute(select(func.count()).select_from(subject_access_requests)
                               .where(subject_access_requests.c.status
                                      == AccessRequestStatus.OPEN.value,
                                      subject_access_requests.c.due_at < now)).scalar_one())
