"""Screening's part in the consent cascade, and its projection of who may read what.

From ``consent.events`` screening keeps two read models:

- ``relationships``: which organisations have a relationship with a person
  (``relationship-established``: registered them as their own, or received a referral);
- ``partner_sharing``: per person, holder organisation and recipient organisation, whether the
  holder's records may be shared with the recipient (``consent-granted`` for partner-sharing
  adds the recipients it names; ``consent-withdrawn`` lists the recipients that lost access).

Withdrawal of ``partner-sharing`` stops that sharing and is acknowledged as before. Erasure
deletes notes, risk answers and identifiers: screening rows stay only in de-identified form
(outcome and scores, no subject reference); the person's relationships and sharing rows go;
MARAC referrals are kept, since they rest on their own lawful basis, and flagged for the DPO.

Every effect is idempotent, on top of the inbox, so a redelivered event changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import func, select, update

from services.screening.adapters.tables import (
    enquiries_due,
    marac_referrals,
    partner_sharing,
    relationships,
    risk_assessments,
    screenings,
)
from shared.cascade import CascadeParticipant
from shared.db import UnitOfWork, utcnow
from shared.events.consent import ConsentGranted, ConsentWithdrawn, RelationshipEstablished
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import Purpose
from shared.kafka.consumer import Handler

SHARING: Purpose = "partner-sharing"
GRANTED = "granted"
WITHDRAWN = "withdrawn"


def relationship_established(uow: UnitOfWork, subject_id: str, org: str, basis: str) -> None:
    """``org`` has a relationship with the person; the first basis recorded is kept."""
    exists = uow.session.execute(select(relationships.c.org).where(
        relationships.c.subject_id == subject_id, relationships.c.org == org)).first()
    if exists is None:
        uow.session.execute(relationships.insert().values(
            subject_id=subject_id, org=org, basis=basis, established_at=utcnow()))


def _set_sharing(uow: UnitOfWork, subject_id: str, holder: str, recipient: str,
                 state: str) -> None:
    key = (partner_sharing.c.subject_id == subject_id, partner_sharing.c.holder_org == holder,
           partner_sharing.c.recipient_org == recipient)
    exists = uow.session.execute(select(partner_sharing.c.state).where(*key)).first()
    if exists is None:
        uow.session.execute(partner_sharing.insert().values(
            subject_id=subject_id, holder_org=holder, recipient_org=recipient, state=state,
            changed_at=utcnow()))
    elif exists.state != state:
        uow.session.execute(update(partner_sharing).where(*key).values(
            state=state, changed_at=utcnow()))


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


def erase(uow: UnitOfWork, subject_id: str) -> int:
    """Delete notes, answers, identifiers and access rows; keep MARAC referrals, flagged for
    the DPO.

    Returns how many records were kept under another lawful basis.
    """
    session = uow.session
    session.execute(update(screenings).where(screenings.c.subject_id == subject_id)
                    .values(subject_id=None, notes_sealed=None))
    session.execute(update(enquiries_due).where(enquiries_due.c.subject_id == subject_id)
                    .values(subject_id=None))
    session.execute(update(risk_assessments).where(risk_assessments.c.subject_id == subject_id)
                    .values(subject_id=None, sealed=None))
    session.execute(partner_sharing.delete().where(partner_sharing.c.subject_id == subject_id))
    session.execute(relationships.delete().where(relationships.c.subject_id == subject_id))
    session.execute(update(marac_referrals).where(
        marac_referrals.c.subject_id == subject_id,
        marac_referrals.c.flagged_for_dpo_at.is_(None)).values(flagged_for_dpo_at=utcnow()))
    retained = session.execute(select(func.count()).select_from(marac_referrals).where(
        marac_referrals.c.subject_id == subject_id)).scalar_one()
    return int(retained)


def has_relationship(uow: UnitOfWork, subject_id: str, org: str) -> bool:
    """Whether ``org`` has a relationship with the person."""
    return uow.session.execute(select(relationships.c.org).where(
        relationships.c.subject_id == subject_id, relationships.c.org == org)).first() \
        is not None


def holders_sharing_with(uow: UnitOfWork, subject_id: str, recipient: str) -> frozenset[str]:
    """The organisations whose records of the person are actively shared with ``recipient``."""
    return frozenset(uow.session.execute(select(partner_sharing.c.holder_org).where(
        partner_sharing.c.subject_id == subject_id,
        partner_sharing.c.recipient_org == recipient,
        partner_sharing.c.state == GRANTED)).scalars())


def _no_effect(_uow: UnitOfWork, _subject_id: str, _purposes: tuple[Purpose, ...]) -> None:
    """The withdrawal's effect needs the event (holder, recipients): see the handlers."""


class ScreeningCascade(CascadeParticipant):
    """The shared cascade participant (acknowledgements as every service gives them), with
    screening's projection of relationships and per-recipient partner sharing."""

    def handlers(self) -> dict[str, Handler]:
        """Consent-event handlers, keyed by event type."""
        handlers = dict(super().handlers())
        acknowledge_withdrawal = handlers["consent-withdrawn"]

        def granted(uow: UnitOfWork, event: CloudEvent, payload: ConsentGranted) -> None:
            if event.subject and payload.purpose == SHARING:
                sharing_granted(uow, event.subject, payload.org, payload.recipients)

        def withdrawn(uow: UnitOfWork, event: CloudEvent, payload: ConsentWithdrawn) -> None:
            if event.subject and SHARING in payload.purposes:
                sharing_withdrawn(uow, event.subject, payload.org, payload.recipients)
            acknowledge_withdrawal(uow, event, payload)

        def established(uow: UnitOfWork, event: CloudEvent,
                        payload: RelationshipEstablished) -> None:
            if event.subject:
                relationship_established(uow, event.subject, payload.org, payload.basis)

        handlers.update({"consent-granted": granted, "consent-withdrawn": withdrawn,
                         "relationship-established": established})
        return handlers


def participant(on_key_shredded: Callable[[str], None]) -> ScreeningCascade:
    """Screening's cascade participant."""
    return ScreeningCascade(service="screening", purposes=frozenset({SHARING}),
                            on_withdrawal=_no_effect, on_erasure=erase,
                            on_key_shredded=on_key_shredded)
