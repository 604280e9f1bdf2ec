"""``/v1/outcomes``: WEMWBS and SWEMWBS outcome measures, recorded by the receiving
organisation."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.errors import MATCH, errors
from services.mentoring.entrypoints.routes.referrals import RECORDERS
from services.mentoring.service_layer import mentoring
from services.mentoring.service_layer.commands import RecordOutcome
from shared.auth import Principal
from shared.http import errors as error_statuses


def router(adapters: MentoringAdapters) -> APIRouter:
    """The outcomes route wired to the adapters."""
    routes = APIRouter()

    @routes.post("/v1/outcomes", status_code=201, responses=error_statuses(MATCH, 410, (
        409, "A timed follow-up before the match has ended, or one already recorded.")))
    def outcome(body: RecordOutcome, caller: Annotated[
            Principal, Depends(adapters.authorizer.require(*RECORDERS))]) -> dict[str, Any]:
        """Score and record WEMWBS (sum of 14) or SWEMWBS (raw sum and metric score), at
        intake, at exit or at a timed follow-up 3, 6 or 12 months after it."""
        with errors(), adapters.database.unit_of_work() as uow:
            return mentoring.record_outcome(uow, adapters.keys, body, caller, date.today())

    return routes
