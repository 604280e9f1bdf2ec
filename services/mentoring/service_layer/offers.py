"""Offers of peer mentoring: recorded without personal data, so that an offer declined, by
someone who has consented to nothing, still counts towards the acceptability of mentoring.
They are written, never listed back: a list of offers by team, date, gender and age band
would let colleagues tell who declined (the figures are reporting's, by month, controlled)."""

from __future__ import annotations

import uuid
from typing import Any

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
                                               recorded_by=caller.subject,
                                               recorded_at=utcnow()))
    publish(uow, MentoringOffered(offer_id=offer_id, **values), None)
    return {"id": offer_id, **command.model_dump(mode="json")}
