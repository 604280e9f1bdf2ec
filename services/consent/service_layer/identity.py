"""Naming a registered person after the fact: linking an NHS number to a subject registered
by a local identifier, and the safeguarding pseudonym services link safeguarding records by.

Subjects are never merged here: a link that would join two subjects (or replace an NHS
number) is recorded for the data protection officer to reconcile, and the caller is answered
exactly as for a link that was applied, so nobody learns that the number was already known.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.consent.adapters.key_store import SqlDataKeyStore
from services.consent.adapters.tables import identity_reconciliations, subjects
from services.consent.service_layer.audit import AuditTrail
from services.consent.service_layer.consents import require_subject
from services.consent.service_layer.subjects import (
    LOCAL_ID_CONTEXT,
    NHS_NUMBER_CONTEXT,
    Identifiers,
)
from shared.auth import Principal
from shared.crypto import KeyShredded, KnownKeys, PersonalDataCipher
from shared.db import UnitOfWork, utcnow
from shared.events.envelope import EncryptedBlock

LinkOutcome = Literal["linked", "already-linked", "needs-reconciliation"]
ReconciliationReason = Literal["nhs-number-held-by-another-subject", "nhs-number-differs"]


class Erased(RuntimeError):
    """The person was erased: nothing about them can be read or written any more."""


def live_subject(session: Session, subject_id: str, caller: Principal) -> Any:
    """The subject's row when the caller's organisation has a relationship with the person
    (else ``SubjectNotFound``, as for an unknown reference); ``Erased`` once erased."""
    row = require_subject(session, subject_id, caller)
    if row.erased_at is not None:
        raise Erased()
    return row


def cipher_for(session: Session, keys: SqlDataKeyStore, subject_id: str) -> PersonalDataCipher:
    """A cipher holding the subject's data key, read in the caller's transaction; ``Erased``
    when the key was shredded."""
    try:
        key = keys.data_key_in(session, subject_id)
    except KeyShredded:
        raise Erased() from None
    return PersonalDataCipher(KnownKeys({subject_id: key}))


def link_nhs_number(uow: UnitOfWork, keys: SqlDataKeyStore, identifiers: Identifiers,
                    subject_id: str, nhs_number: str, caller: Principal, *,
                    trail: AuditTrail) -> LinkOutcome:
    """Link a normalised NHS number to a subject the caller's organisation has a relationship
    with; the safeguarding pseudonym becomes the NHS-number one.

    When the number already names another subject, or the subject already has another
    number, nothing about either subject changes: the link is recorded for reconciliation
    by the DPO. The outcome goes to the audit trail only; the caller's answer is the same.
    """
    session = uow.session
    row = live_subject(session, subject_id, caller)
    cipher = cipher_for(session, keys, subject_id)
    digest = identifiers.lookup.digest(nhs_number)
    holder = session.execute(select(subjects.c.subject_id)
                             .where(subjects.c.nhs_lookup == digest)).scalar()
    outcome: LinkOutcome
    reconciliation_id = None
    if holder == subject_id:
        outcome = "already-linked"
    elif holder is None and row.nhs_lookup is None and _linked(
            session, cipher, identifiers, subject_id, nhs_number, digest):
        outcome = "linked"
    else:
        if holder is None and row.nhs_lookup is None:  # linked elsewhere meanwhile
            holder = session.execute(select(subjects.c.subject_id)
                                     .where(subjects.c.nhs_lookup == digest)).scalar()
        reason: ReconciliationReason = ("nhs-number-differs" if holder is None
                                        else "nhs-number-held-by-another-subject")
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


def _linked(session: Session, cipher: PersonalDataCipher, identifiers: Identifiers,
            subject_id: str, nhs_number: str, digest: str) -> bool:
    """Set the subject's NHS-number mapping and pseudonym unless it has one; False when
    another transaction took the number first (the unique look-up refuses it)."""
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


def safeguarding_pseudonym(uow: UnitOfWork, keys: SqlDataKeyStore, identifiers: Identifiers,
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


def _computed(session: Session, keys: SqlDataKeyStore, identifiers: Identifiers,
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


def opened_fields(session: Session, keys: SqlDataKeyStore, subject_id: str, context: str,
                  sealed: bytes) -> dict[str, Any]:
    """The fields sealed under the subject's live data key; ``Erased`` once shredded."""
    opened = cipher_for(session, keys, subject_id).open(
        subject_id, context, EncryptedBlock.model_validate_json(sealed))
    if not isinstance(opened, dict):  # the key held by cipher_for is live
        raise Erased()
    return opened
