"""Reporting's part in the consent cascade: a person who withdraws ``evaluation`` (or is
erased) has their contributions removed at once and stays out; the published figures that
counted them change once K people have moved, and the release rule's memory keeps nothing
that links to them. A person who withdraws ``research`` leaves the research extract and
figures at once (their contributions still count in the programme's own figures)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import delete, select, update

from services.reporting.adapters.tables import (
    contributions,
    evaluation_consents,
    lock_rule_memory,
    published_rows,
    research_consents,
)
from services.reporting.domain.contributions import consent_contributions
from services.reporting.domain.people import person_reference
from services.reporting.domain.release_rule import RowState
from shared.cascade import CascadeParticipant
from shared.db import UnitOfWork, upsert, utcnow
from shared.events.consent import ConsentGranted, ConsentWithdrawn, ErasureRequested
from shared.events.envelope import CloudEvent
from shared.events.vocabulary import Purpose


def _set(uow: UnitOfWork, subject_id: str, state: str, erased: bool = False) -> None:
    upsert(uow.session, evaluation_consents, {"subject_id": subject_id},
           {"state": state, "erased": erased, "changed_at": utcnow()})


def _set_research(uow: UnitOfWork, subject_id: str, org: str, state: str) -> None:
    upsert(uow.session, research_consents, {"subject_id": subject_id, "org": org},
           {"state": state, "changed_at": utcnow()})


def granted(uow: UnitOfWork, event: CloudEvent, consent: ConsentGranted) -> None:
    """The person agreed to be counted (``evaluation``: what opt-in mode needs), to take part
    in the study's data collection (``research``), or to peer mentoring (the feasibility
    funnel's ``consented``, unless they are out)."""
    subject_id = event.subject
    if subject_id is None:
        return
    if consent.purpose == "research":
        _set_research(uow, subject_id, consent.org, "granted")
    elif consent.purpose == "evaluation":
        _set(uow, subject_id, "granted")
    elif consent.purpose == "peer-mentoring" and not excluded(uow, [subject_id]):
        uow.session.execute(contributions.insert(), [
            dict(vars(c), month=c.month, subject_id=subject_id, anonymous=False,
                 source_event=event.dedup_key)
            for c in consent_contributions(consent, (event.time or utcnow()).date())])


def withdrawn(uow: UnitOfWork, subject_id: str, purposes: tuple[Purpose, ...],
              withdrawal: ConsentWithdrawn) -> None:
    """``research``: the withdrawing organisation's records out of the research extract and
    figures; ``evaluation``: the person out of everything reporting holds."""
    if "research" in purposes:
        _set_research(uow, subject_id, withdrawal.org, "withdrawn")
    if "evaluation" in purposes:
        evaluation_withdrawn(uow, subject_id)


def evaluation_withdrawn(uow: UnitOfWork, subject_id: str) -> None:
    """Subtract the person's contributions and keep them out."""
    uow.session.execute(delete(contributions).where(contributions.c.subject_id == subject_id))
    _set(uow, subject_id, "withdrawn")
    _forget_in_published_figures(uow, subject_id)


def _forget_in_published_figures(uow: UnitOfWork, subject_id: str) -> None:
    """Replace the person's reference in the release rule's memory, row by row, with tokens
    nothing else holds. It waits for any release being stored: that release is forgotten in
    here, or, stored after, forgets the person itself."""
    lock_rule_memory(uow.session)
    reference = person_reference(subject_id)
    rows = uow.session.execute(select(published_rows).where(
        published_rows.c.state.contains(reference))).all()
    for row in rows:
        state = RowState.from_json(json.loads(row.state)).forgetting(reference)
        uow.session.execute(update(published_rows).where(
            published_rows.c.row_key == row.row_key).values(state=json.dumps(state.to_json())))


def erase(uow: UnitOfWork, subject_id: str) -> int:
    """Delete everything held about the person; reporting retains nothing."""
    evaluation_withdrawn(uow, subject_id)
    uow.session.execute(delete(research_consents).where(
        research_consents.c.subject_id == subject_id))
    _set(uow, subject_id, "withdrawn", erased=True)
    return 0


def decided_erasure(uow: UnitOfWork, subject_id: str, request: ErasureRequested) -> int:
    """Apply the DPO's decision: the person leaves every figure, or (scope ``organisation``,
    another organisation holds them independently) only the deciding organisation's
    contributions go, and the other organisations' still count them. Retains nothing."""
    if request.scope == "subject":
        return erase(uow, subject_id)
    uow.session.execute(delete(contributions).where(contributions.c.subject_id == subject_id,
                                                    contributions.c.org == request.org))
    uow.session.execute(delete(research_consents).where(
        research_consents.c.subject_id == subject_id, research_consents.c.org == request.org))
    return 0


def excluded(uow: UnitOfWork, subject_ids: Iterable[str]) -> set[str]:
    """Those of the people who withdrew evaluation or were erased."""
    wanted = list(subject_ids)
    c = evaluation_consents.c
    return set() if not wanted else set(uow.session.execute(select(c.subject_id).where(
        c.subject_id.in_(wanted), c.state == "withdrawn")).scalars())


def participant() -> CascadeParticipant:
    """Reporting's part in the cascade: the evaluation and research purposes."""
    return CascadeParticipant(service="reporting",
                              on_withdrawal=withdrawn, on_erasure=erase,
                              on_grant=granted, on_decided_erasure=decided_erasure)
