"""Offers of peer mentoring: recorded without personal data, so that an offer declined, by
someone who has consented to nothing, still counts towards the acceptability of mentoring."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.mentoring.adapters.tables import offers
from services.mentoring.domain import access
from services.mentoring.service_layer.commands import RecordOffer
from services.mentoring.service_layer.publishing import publish
from shared.auth import NotPermitted, Principal
from shared.db import UnitOfWork, utcnow
from shared.events.mentoring import MentoringOffered


def record_offer(uow: UnitOfWork, command: RecordOffer, caller: Principal) -> dict[str, Any]:
    """Record an offer the caller's own organisation made, and what the person said."""
    if not access.may_record_offer(caller.org, command.org, caller.roles):
        raise NotPermitted("you may record only your own organisation's offers")
    offer_id = f"off_{uuid.uuid4().hex}"
    values = command.model_dump()
    uow.session.execute(offers.insert().values(offer_id=offer_id, **values,
                                               recorded_at=utcnow()))
    publish(uow, MentoringOffered(offer_id=offer_id, **values), None)
    return {"id": offer_id, **command.model_dump(mode="json")}


def offers_of(session: Session, caller: Principal) -> list[dict[str, Any]]:
    """The caller's own organisation's offers, newest first."""
    if not access.may_record_offer(caller.org, caller.org, caller.roles):
        raise NotPermitted("your role may not see offers")
    rows = session.execute(select(offers).where(offers.c.org == caller.org)
                               .order_by(offers.c.offered_on.desc(), offers.c.recorded_at))
    return [{"id": row.offer_id, "org": row.org, "team": row.team, "gender": row.gender,
             "age_band": row.age_band, "offered_on": row.offered_on.isoformat(),
             "outcome": row.outcome, "decline_reason": row.decline_reason} for row in rows]
