"""Screening's part in the consent cascade, and its projection of who may read what (read
by ``permissions``).

From ``consent.events`` screening keeps two read models:

- ``relationships``: which organisations have a relationship with a person
  (``relationship-established``: registered them as their own, or received a referral);
- ``partner_sharing``: per person, holder organisation and recipient organisation, whether the
  holder's records may be shared with the recipient (``consent-granted`` for partner-sharing
  adds the recipients it names; ``consent-withdrawn`` lists the recipients that lost access).

Withdrawal of ``partner-sharing`` stops that sharing and is acknowledged as before. Erasure,
as the DPO decided it (``scope``, ``org``, ``retained``), deletes notes, risk answers and
identifiers: screening rows stay only in de-identified form (outcome and scores, no subject
reference); the person's relationships and sharing rows go. Safeguarding records are kept,
since they rest on their own lawful basis, and flagged for the DPO: MARAC referrals with their
safe contact, and the risk assessments behind them with their answers, reasons and incident
counts (sealed under screening's records key, linked by the safeguarding pseudonym).
``safe-contact-updated`` from an organisation replaces the safe contact on the referrals that
organisation raised or recorded for the person, open or kept, and its latest known; never on
another organisation's (whoever registers the person at a partner can change only the
partner's copy).

Every effect is idempotent, on top of the inbox, so a redelivered event changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from services.screening.adapters.tables import (
    enquiries_due,
    marac_referrals,
    partner_sharing,
    referral_locks,
    relationships,
    risk_assessments,
    safe_contacts,
    screenings,
)
from services.screening.service_layer.permissions import GRANTED
from services.screening.service_layer.risk import replace_safe_contact
from shared.cascade import CascadeParticipant
from shared.crypto import PersonalDataCipher, RecordCipher
from shared.db import UnitOfWork, insert_if_absent, upsert, utcnow
from shared.events.consent import (
    ConsentGranted,
    ConsentWithdrawn,
    ErasureRequested,
    RelationshipEstablished,
    SafeContact,
    SafeContactUpdated,
)
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import Purpose
from shared.kafka.consumer import Handler

SHARING: Purpose = "partner-sharing"
WITHDRAWN = "withdrawn"


def relationship_established(uow: UnitOfWork, subject_id: str, org: str, basis: str) -> None:
    """``org`` has a relationship with the person; the first basis recorded is kept."""
    insert_if_absent(uow.session, relationships, subject_id=subject_id, org=org, basis=basis,
                     established_at=utcnow())


def _set_sharing(uow: UnitOfWork, subject_id: str, holder: str, recipient: str,
                 state: str) -> None:
    upsert(uow.session, partner_sharing,
           {"subject_id": subject_id, "holder_org": holder, "recipient_org": recipient},
           {"state": state, "changed_at": utcnow()}, unless_same="state")


def sharing_granted(uow: UnitOfWork, subject_id: str, holder: str,
                    recipients: Iterable[str]) -> None:
    """The holder's records of this person may now be shared with ``recipients`` as well.

    As in the consent service, a grant adds recipients; only a withdrawal removes one.
    """
    for recipient in sorted({r for r in recipients if r != holder}):
        _set_sharing(uow, subject_id, holder, recipient, GRANTED)


def sharing_withdrawn(uow: UnitOfWork, subject_id: str, holder: str,
                      recipients: Iterable[str]) -> None:
    """The named recipients lose access to the holder's records of this person.

    A withdrawal of partner-sharing that names no recipient leaves the holder sharing with
    nobody (the consent service names every recipient that lost access, so the holder should
    have none left here either; should one remain, it goes: fail closed).
    """
    named = sorted(set(recipients))
    query = select(partner_sharing.c.recipient_org).where(
        partner_sharing.c.subject_id == subject_id, partner_sharing.c.holder_org == holder,
        partner_sharing.c.state == GRANTED)
    if named:
        query = query.where(partner_sharing.c.recipient_org.in_(named))
    for recipient in uow.session.execute(query).scalars().all():
        _set_sharing(uow, subject_id, holder, recipient, WITHDRAWN)


def erase(uow: UnitOfWork, subject_id: str, request: ErasureRequested | None = None) -> int:
    """Erase the person's records as the DPO decided: every organisation's (scope
    ``subject``, also when no decision is given) or only ``request.org``'s (scope
    ``organisation``), except the kinds the DPO kept (``retained``). Safeguarding records are
    always kept, flagged for the DPO: MARAC referrals, and the risk assessments behind them with
    their sealed answers, reasons and incident counts.

    Returns how many records were kept under another lawful basis.
    """
    session = uow.session
    scope = "subject" if request is None else request.scope
    kept_kinds = frozenset(() if request is None else request.retained)

    def mine(table: Any, org_column: Any) -> list[Any]:
        where = [table.c.subject_id == subject_id]
        if scope == "organisation" and request is not None:
            where.append(org_column == request.org)
        return where

    kept = 0
    if "screenings" in kept_kinds:
        kept += session.execute(select(func.count()).select_from(screenings).where(
            *mine(screenings, screenings.c.org))).scalar_one()
    else:
        session.execute(update(screenings).where(*mine(screenings, screenings.c.org))
                        .values(subject_id=None, notes_sealed=None))
        session.execute(update(enquiries_due).where(*mine(enquiries_due, enquiries_due.c.org))
                        .values(subject_id=None))
    referral_where = mine(marac_referrals, marac_referrals.c.org)
    behind_referral = select(marac_referrals.c.assessment_id).where(
        *referral_where, marac_referrals.c.assessment_id.is_not(None))
    if "risk-assessments" in kept_kinds:
        kept += session.execute(select(func.count()).select_from(risk_assessments).where(
            *mine(risk_assessments, risk_assessments.c.org),
            risk_assessments.c.assessment_id.not_in(behind_referral))).scalar_one()
    else:
        session.execute(update(risk_assessments).where(
            *mine(risk_assessments, risk_assessments.c.org),
            risk_assessments.c.assessment_id.not_in(behind_referral)).values(
            subject_id=None, sealed=None, record_sealed=None, safeguarding_pseudonym=None))
    # kept for safeguarding: de-identified by subject (the referral links it), answers sealed
    session.execute(update(risk_assessments).where(
        *mine(risk_assessments, risk_assessments.c.org),
        risk_assessments.c.assessment_id.in_(behind_referral)).values(subject_id=None))
    kept += session.execute(select(func.count()).select_from(risk_assessments).where(
        risk_assessments.c.assessment_id.in_(behind_referral))).scalar_one()
    if scope == "organisation" and request is not None:
        session.execute(partner_sharing.delete().where(
            partner_sharing.c.subject_id == subject_id,
            (partner_sharing.c.holder_org == request.org)
            | (partner_sharing.c.recipient_org == request.org)))
        session.execute(relationships.delete().where(relationships.c.subject_id == subject_id,
                                                     relationships.c.org == request.org))
        session.execute(safe_contacts.delete().where(safe_contacts.c.subject_id == subject_id,
                                                     safe_contacts.c.org == request.org))
    else:
        session.execute(partner_sharing.delete().where(
            partner_sharing.c.subject_id == subject_id))
        session.execute(relationships.delete().where(relationships.c.subject_id == subject_id))
        session.execute(safe_contacts.delete().where(safe_contacts.c.subject_id == subject_id))
        session.execute(referral_locks.delete().where(referral_locks.c.subject_id == subject_id))
    session.execute(update(marac_referrals).where(
        *referral_where, marac_referrals.c.flagged_for_dpo_at.is_(None)).values(
        flagged_for_dpo_at=utcnow()))
    kept += session.execute(select(func.count()).select_from(marac_referrals).where(
        *referral_where)).scalar_one()
    return int(kept)


def safe_contact_updated(uow: UnitOfWork, cipher: PersonalDataCipher, records: RecordCipher,
                         subject_id: str, payload: SafeContactUpdated) -> None:
    """Open ``payload.org``'s new safe contact with the person's data key and keep it under
    the records key, as that organisation's latest known and on the MARAC referrals it raised
    or recorded for the person; other organisations' referrals keep theirs (nothing once
    erased)."""
    if payload.personal is None:
        return
    opened = cipher.open(subject_id, SafeContactUpdated.event_type, payload.personal)
    if not isinstance(opened, dict):
        return
    contact = SafeContact.model_validate(opened["safe_contact"], strict=False).model_dump()
    replace_safe_contact(uow, records, subject_id, payload.org, contact)


def withdrawn(uow: UnitOfWork, subject_id: str, purposes: tuple[Purpose, ...],
              withdrawal: ConsentWithdrawn) -> None:
    """A withdrawal of partner-sharing by its holder: the recipients it names (or all) lose
    what rested on it."""
    if SHARING in purposes:
        sharing_withdrawn(uow, subject_id, withdrawal.org, withdrawal.recipients)


@dataclass
class ScreeningCascade(CascadeParticipant):
    """The shared cascade participant (acknowledgements as every service gives them), with
    screening's projection of relationships and per-recipient partner sharing, and the safe
    contact on its safeguarding records."""

    cipher: PersonalDataCipher = field(kw_only=True)
    records: RecordCipher = field(kw_only=True)

    def handlers(self) -> dict[str, Handler]:
        """Consent-event handlers, keyed by event type."""
        handlers = dict(super().handlers())

        def granted(uow: UnitOfWork, event: CloudEvent, payload: ConsentGranted) -> None:
            if event.subject and payload.purpose == SHARING:
                sharing_granted(uow, event.subject, payload.org, payload.recipients)

        def established(uow: UnitOfWork, event: CloudEvent,
                        payload: RelationshipEstablished) -> None:
            if event.subject:
                relationship_established(uow, event.subject, payload.org, payload.basis)

        handlers.update({"consent-granted": granted, "relationship-established": established})

        def contact(uow: UnitOfWork, event: CloudEvent, payload: SafeContactUpdated) -> None:
            if event.subject:
                safe_contact_updated(uow, self.cipher, self.records, event.subject, payload)

        handlers["safe-contact-updated"] = contact
        return handlers


def participant(on_key_shredded: Callable[[str], None], cipher: PersonalDataCipher,
                records: RecordCipher) -> ScreeningCascade:
    """Screening's cascade participant."""
    return ScreeningCascade(service="screening",
                            on_withdrawal=withdrawn, on_erasure=erase,
                            on_key_shredded=on_key_shredded, on_decided_erasure=erase,
                            cipher=cipher, records=records)
