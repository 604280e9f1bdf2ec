"""``/v1/offers``: offers of peer mentoring and what the person said, recorded without
personal data by the organisation that made them (and never listed back: see
``service_layer.offers``)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.domain import access
from services.mentoring.service_layer import offers
from services.mentoring.service_layer.commands import RecordOffer
from shared.auth import Principal


def router(adapters: MentoringAdapters) -> APIRouter:
    """The offers route wired to the adapters."""
    routes = APIRouter()
    recorder = Depends(adapters.authorizer.require(*sorted(access.OFFER_RECORDERS)))

    @routes.post("/v1/offers", status_code=201)
    def record_offer(body: RecordOffer, caller: Annotated[Principal, recorder]
                     ) -> dict[str, Any]:
        """Record an offer of peer mentoring made by the caller's organisation."""
        with adapters.database.unit_of_work() as uow:
            return offers.record_offer(uow, body, caller)

    return routes
