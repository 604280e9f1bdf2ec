"""``/v1/adverse-events``: harm to a mentee during the mentoring, logged by the receiving
organisation; a serious one also goes to the Trust's safeguarding lead."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.errors import MATCH, errors
from services.mentoring.entrypoints.routes.referrals import RECORDERS
from services.mentoring.service_layer import adverse_events
from services.mentoring.service_layer.commands import RecordAdverseEvent
from shared.auth import Principal
from shared.http import errors as error_statuses


def router(adapters: MentoringAdapters) -> APIRouter:
    """The adverse-events route wired to the adapters."""
    routes = APIRouter()

    @routes.post("/v1/adverse-events", status_code=201, responses=error_statuses(MATCH, 410))
    def record(body: RecordAdverseEvent, caller: Annotated[
            Principal, Depends(adapters.authorizer.require(*RECORDERS))]) -> dict[str, Any]:
        """Log an adverse event; a serious one raises a safeguarding concern."""
        with errors(), adapters.database.unit_of_work() as uow:
            return adverse_events.record_adverse_event(
                uow, adapters.keys, adapters.cipher, adapters.records, adapters.consent, body,
                caller)

    return routes
