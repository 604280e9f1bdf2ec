"""Screening's part in the consent cascade.

Withdrawal of ``partner-sharing`` stops partner access. Erasure deletes notes and identifiers:
screening rows stay only in de-identified form (outcome and scores, no subject reference).
"""

from __future__ import annotations

from sqlalchemy import select, update

from services.screening.adapters.tables import partner_sharing, screenings
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
    """Delete notes and the subject reference; returns records kept under another basis."""
    _set_sharing(uow, subject_id, "withdrawn")
    uow.session.execute(update(screenings).where(screenings.c.subject_id == subject_id)
                        .values(subject_id=None, notes_sealed=None))
    uow.session.execute(partner_sharing.delete().where(
        partner_sharing.c.subject_id == subject_id))
    return 0


def partner_may_read(uow: UnitOfWork, subject_id: str) -> bool:
    """Whether partner-sharing consent is active for this person."""
    row = uow.session.execute(select(partner_sharing.c.state).where(
        partner_sharing.c.subject_id == subject_id)).first()
    return row is not None and row.state == "granted"
