"""Naming a registered person after the fact: linking an NHS number to a subject registered
by a local identifier, and the safeguarding pseudonym services link safeguarding records by.

A link never sets the NHS-number look-up by itself: every link is recorded for the asking
organisation's data protection officer (``identity_reconciliations``) and applied only when
they resolve it. Were a link applied at once when the number was unclaimed, registering the
number afterwards would answer with the linked subject only if nobody knew the number before,
so a dummy subject plus a link would tell anyone whether a person is known to the programme.
Only the safeguarding pseudonym follows a link at once, and only when no subject holds the
number (the pseudonym is served to services alone and registration never looks at it), so
repeat referrals are still recognised. Subjects are never merged here (docs/identity.md).
"""

from __future__ import annotations

import uuid
from typing import Any, Final, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.consent.adapters.tables import identity_reconciliations, subjects
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.consents import require_subject
from services.consent.service_layer.ports import SubjectKeys
from services.consent.service_layer.subjects import (
    LOCAL_ID_CONTEXT,
    NHS_NUMBER_CONTEXT,
    Identifiers,
)
from shared.auth import Principal
from shared.crypto import KeyShredded, KnownKeys, PersonalDataCipher
from shared.db import UnitOfWork, utcnow
from shared.events.envelope import EncryptedBlock

LinkOutcome = Literal["already-linked", "needs-reconciliation"]
ReconciliationReason = Literal["nhs-number-unclaimed", "nhs-number-held-by-another-subject",
                               "nhs-number-differs"]
Resolution = Literal["link", "reject"]
ResolvedStatus = Literal["linked", "rejected", "awaiting-merge"]
RESOLUTION_CONTEXT: Final = "identity_reconciliation.reason"


class ReconciliationNotFound(LookupError):
    """No open reconciliation has this id (or none for the caller's organisation)."""


class Erased(RuntimeError):
    """The person was erased: nothing about them can be read or written any more."""


def live_subject(session: Session, subject_id: str, caller: Principal) -> Any:
    """The subject's row when the caller's organisation has a relationship with the person
    (else ``SubjectNotFound``, as for an unknown reference); ``Erased`` once erased."""
    row = require_subject(session, subject_id, caller)
    if row.erased_at is not None:
        raise Erased()
    return row


def cipher_for(session: Session, keys: SubjectKeys, subject_id: str) -> PersonalDataCipher:
    """A cipher holding the subject's data key, read in the caller's transaction; ``Erased``
    when the key was shredded."""
    try:
        key = keys.data_key_in(session, subject_id)
    except KeyShredded:
        raise Erased() from None
    return PersonalDataCipher(KnownKeys({subject_id: key}))


def link_nhs_number(uow: UnitOfWork, keys: SubjectKeys, identifiers: Identifiers,
                    subject_id: str, nhs_number: str, caller: Principal, *,
                    trail: AuditTrail) -> LinkOutcome:
    """Record a normalised NHS number for a subject the caller's organisation has a
    relationship with, for its DPO to resolve (``resolve_reconciliation``).

    The look-up and the sealed number are not set until then, so registering the number
    answers the same afterwards whether or not it was known before. When no subject holds
    the number, the safeguarding pseudonym becomes the NHS-number one at once. The outcome
    goes to the audit trail only; the caller's answer is always the same.
    """
    session = uow.session
    row = live_subject(session, subject_id, caller)
    cipher = cipher_for(session, keys, subject_id)
    digest = identifiers.lookup.digest(nhs_number)
    holder = session.execute(select(subjects.c.subject_id)
                             .where(subjects.c.nhs_lookup == digest)).scalar()
    reconciliation_id = None
    outcome: LinkOutcome
    if holder == subject_id:
        outcome = "already-linked"
    else:
        reason: ReconciliationReason = (
            "nhs-number-held-by-another-subject" if holder is not None
            else "nhs-number-differs" if row.nhs_lookup is not None
            else "nhs-number-unclaimed")
        if reason == "nhs-number-unclaimed":
            session.execute(update(subjects).where(subjects.c.subject_id == subject_id)
                            .values(safeguarding_pseudonym=identifiers.pseudonyms
                                    .of_nhs_number(nhs_number)))
        reconciliation_id = f"rec_{uuid.uuid4().hex}"
        sealed = cipher.seal(subject_id, NHS_NUMBER_CONTEXT, {"nhs_number": nhs_number})
        session.execute(insert(identity_reconciliations).values(
            reconciliation_id=reconciliation_id, subject_id=subject_id, org=caller.org,
            reason=reason, other_subject_id=holder,
            nhs_number_sealed=sealed.model_dump_json().encode(), status="open",
            requested_at=utcnow()))
        outcome = "needs-reconciliation"
    trail.record(uow, caller, "nhs-number-linked", subject_id, outcome=outcome,
                 reconciliation_id=reconciliation_id)
    return outcome


def open_reconciliations(uow: UnitOfWork, keys: SubjectKeys, caller: Principal, *,
                         trail: AuditTrail, limit: int = 500) -> list[dict[str, Any]]:
    """The caller's organisation's open reconciliations, oldest first, with the NHS number
    given opened for its DPO (the listing is audited). Whether the number names another
    subject is not shown here; resolving says so."""
    session = uow.session
    rows = session.execute(select(identity_reconciliations).where(
        identity_reconciliations.c.org == caller.org,
        identity_reconciliations.c.status == "open")
        .order_by(identity_reconciliations.c.requested_at).limit(limit)).all()
    listed = []
    for row in rows:
        try:
            nhs_number = opened_fields(session, keys, row.subject_id, NHS_NUMBER_CONTEXT,
                                       row.nhs_number_sealed)["nhs_number"]
        except Erased:
            continue
        listed.append({"reconciliation_id": row.reconciliation_id,
                       "subject_id": row.subject_id, "nhs_number": nhs_number,
                       "recorded_at": row.requested_at.isoformat()})
    trail.record(uow, caller, "identity-reconciliations-listed", listed=len(listed))
    return listed


def resolve_reconciliation(uow: UnitOfWork, keys: SubjectKeys, identifiers: Identifiers,
                           reconciliation_id: str, resolution: Resolution, reason: str,
                           caller: Principal, *, trail: AuditTrail
                           ) -> tuple[str, ResolvedStatus]:
    """The DPO's resolution of one of their organisation's open reconciliations, once;
    returns the subject and what became of the link.

    ``link`` sets the subject's NHS-number look-up, sealed number and pseudonym when no other
    subject holds the number and the subject has none; otherwise it is recorded as
    ``awaiting-merge`` (a Trust-level merge of two subjects, not built). ``reject`` leaves the
    subject unnamed and puts back the pseudonym it had before the link.
    """
    session = uow.session
    rec = session.execute(select(identity_reconciliations).where(
        identity_reconciliations.c.reconciliation_id == reconciliation_id,
        identity_reconciliations.c.org == caller.org,
        identity_reconciliations.c.status == "open").with_for_update()).first()
    if rec is None:
        raise ReconciliationNotFound()
    subject_id = rec.subject_id
    row = session.execute(select(subjects).where(subjects.c.subject_id == subject_id)
                          .with_for_update()).one()
    if row.erased_at is not None:
        raise Erased()
    cipher = cipher_for(session, keys, subject_id)
    nhs_number = opened_fields(session, keys, subject_id, NHS_NUMBER_CONTEXT,
                               rec.nhs_number_sealed)["nhs_number"]
    pseudonym = identifiers.pseudonyms.of_nhs_number(nhs_number)
    status: ResolvedStatus
    if resolution == "reject":
        status = "rejected"
        if row.nhs_lookup is None and row.safeguarding_pseudonym == pseudonym:
            session.execute(update(subjects).where(subjects.c.subject_id == subject_id)
                            .values(safeguarding_pseudonym=_computed(session, keys,
                                                                     identifiers, row)))
    elif row.nhs_lookup == identifiers.lookup.digest(nhs_number) or (
            row.nhs_lookup is None and _linked(session, cipher, identifiers, subject_id,
                                               nhs_number, identifiers.lookup.digest(nhs_number))):
        status = "linked"
    else:
        status = "awaiting-merge"
    sealed = cipher.seal(subject_id, RESOLUTION_CONTEXT, {"reason": reason})
    session.execute(update(identity_reconciliations).where(
        identity_reconciliations.c.reconciliation_id == reconciliation_id).values(
        status=status, resolved_at=utcnow(), resolved_by=caller.subject,
        resolution_reason_sealed=sealed.model_dump_json().encode()))
    trail.record(uow, caller, "identity-reconciliation-resolved", subject_id,
                 reconciliation_id=reconciliation_id, resolution=resolution, status=status)
    return subject_id, status


def _linked(session: Session, cipher: PersonalDataCipher, identifiers: Identifiers,
            subject_id: str, nhs_number: str, digest: str) -> bool:
    """Set the subject's NHS-number mapping and pseudonym unless it has one; False when
    another subject holds the number (the unique look-up refuses it)."""
    sealed = cipher.seal(subject_id, NHS_NUMBER_CONTEXT, {"nhs_number": nhs_number})
    try:
        with session.begin_nested():
            done = session.execute(update(subjects).where(
                subjects.c.subject_id == subject_id, subjects.c.nhs_lookup.is_(None)).values(
                nhs_lookup=digest, nhs_number_sealed=sealed.model_dump_json().encode(),
                safeguarding_pseudonym=identifiers.pseudonyms.of_nhs_number(nhs_number)))
    except IntegrityError:
        return False
    return bool(done.rowcount)  # type: ignore[attr-defined]


def safeguarding_pseudonym(uow: UnitOfWork, keys: SubjectKeys, identifiers: Identifiers,
                           subject_id: str, caller: Principal, *,
                           trail: AuditTrail) -> str | None:
    """The person's safeguarding pseudonym, for a service linking safeguarding records.

    Computed at registration and at an NHS-number link; for people registered before it
    existed, computed now from their sealed NHS number (or local identifier) and stored.
    None when the subject holds neither. Raises ``SubjectNotFound``, or ``Erased``.
    """
    session = uow.session
    row = live_subject(session, subject_id, caller)
    pseudonym: str | None = row.safeguarding_pseudonym
    if pseudonym is None:
        pseudonym = _computed(session, keys, identifiers, row)
        if pseudonym is not None:
            session.execute(update(subjects).where(subjects.c.subject_id == subject_id)
                            .values(safeguarding_pseudonym=pseudonym))
    trail.record(uow, caller, "safeguarding-pseudonym-served", subject_id,
                 found=pseudonym is not None)
    return pseudonym


def _computed(session: Session, keys: SubjectKeys, identifiers: Identifiers,
              row: Any) -> str | None:
    """The pseudonym from what the subject's row holds sealed, if anything."""
    if row.nhs_number_sealed is not None:
        nhs_number = opened_fields(session, keys, row.subject_id, NHS_NUMBER_CONTEXT,
                             row.nhs_number_sealed)["nhs_number"]
        return identifiers.pseudonyms.of_nhs_number(nhs_number)
    if row.local_id_sealed is not None:
        local_id = opened_fields(session, keys, row.subject_id, LOCAL_ID_CONTEXT,
                           row.local_id_sealed)["local_id"]
        return identifiers.pseudonyms.of_local_id(row.registered_by_org, local_id)
    return None


def opened_fields(session: Session, keys: SubjectKeys, subject_id: str, context: str,
                  sealed: bytes) -> dict[str, Any]:
    """The fields sealed under the subject's live data key; ``Erased`` once shredded."""
    opened = cipher_for(session, keys, subject_id).open(
        subject_id, context, EncryptedBlock.model_validate_json(sealed))
    if not isinstance(opened, dict):  # the key held by cipher_for is live
        raise Erased()
    return opened
