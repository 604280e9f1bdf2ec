"""Screening's part in the consent cascade.

Withdrawal of ``partner-sharing`` stops partner access. Erasure deletes notes, risk answers and
identifiers: screening rows stay only in de-identified form (outcome and scores, no subject
reference); MARAC referrals are kept, since they rest on their own lawful basis, and flagged
for the data protection officer.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from services.screening.adapters.tables import (
    enquiries_due,
    marac_referrals,
    partner_sharing,
    risk_assessments,
    screenings,
)
from shared.db import UnitOfWork, utcnow
from shared.events.vocabulary import Purpose


def _set_sharing(uow: UnitOfWork, subject_id: str, state: str) -> None:
    exists = uow.session.execute(select(partner_sharing.c.subject_id).where(
        partner_sharing.c.subject_id == subject_id)).first()
    values = {"state": state, "changed_at": utcnow()}
    if exists is None:
        uow.session.execute(partner_sharing.insert().values(subject_id=subject_id, **values))
    else:
        uow.session.execute(update(partner_sharing).where(
            partner_sharing.c.subject_id == subject_id).values(**values))


def sharing_granted(uow: UnitOfWork, subject_id: str, _purpose: Purpose) -> None:
    """Partner staff may now read this person's screening and risk results."""
    _set_sharing(uow, subject_id, "granted")


def sharing_withdrawn(uow: UnitOfWork, subject_id: str, _purposes: tuple[Purpose, ...]) -> None:
    """Partner access to this person's results stops."""
    _set_sharing(uow, subject_id, "withdrawn")


def erase(uow: UnitOfWork, subject_id: str) -> int:
    """Delete notes, answers and identifiers; keep MARAC referrals, flagged for the DPO.

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
    session.execute(update(marac_referrals).where(
        marac_referrals.c.subject_id == subject_id,
        marac_referrals.c.flagged_for_dpo_at.is_(None)).values(flagged_for_dpo_at=utcnow()))
    retained = session.execute(select(func.count()).select_from(marac_referrals).where(
        marac_referrals.c.subject_id == subject_id)).scalar_one()
    return int(retained)


def partner_may_read(uow: UnitOfWork, subject_id: str) -> bool:
    """Whether partner-sharing consent is active for this person."""
    row = uow.session.execute(select(partner_sharing.c.state).where(
        partner_sharing.c.subject_id == subject_id)).first()
    return row is not None and row.state == "granted"
