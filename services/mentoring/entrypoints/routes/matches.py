"""``/v1/matches``: endings, planned or unplanned, recorded by the receiving organisation."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.errors import MATCH, errors
from services.mentoring.entrypoints.routes import ID
from services.mentoring.entrypoints.routes.referrals import RECORDERS
from services.mentoring.service_layer import mentoring
from services.mentoring.service_layer.commands import EndMatch
from shared.auth import Principal
from shared.http import errors as error_statuses


def router(adapters: MentoringAdapters) -> APIRouter:
    """The matches route wired to the adapters."""
    routes = APIRouter()

    @routes.post("/v1/matches/{match_id}/end", responses=error_statuses(MATCH, 410, (
        409, "The match has already ended.")))
    def end(match_id: Annotated[str, ID], body: EndMatch, caller: Annotated[
            Principal, Depends(adapters.authorizer.require(*RECORDERS))]) -> dict[str, Any]:
        """End a match, planned or unplanned; the mentor's room goes to the waitlist."""
        with errors(), adapters.database.unit_of_work() as uow:
            return mentoring.end_match(uow, adapters.keys, adapters.cipher, match_id, body,
                                       caller, date.today(), adapters.rules)

    return routes
