"""``/v1/caseload``: a mentor coordinator's list to work from, for their own organisation."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.service_layer import caseload
from shared.auth import Principal


def router(adapters: MentoringAdapters) -> APIRouter:
    """The caseload route wired to the adapters."""
    routes = APIRouter()
    coordinator = Depends(adapters.authorizer.require("mentor-coordinator"))

    @routes.get("/v1/caseload")
    def get_caseload(caller: Annotated[Principal, coordinator]) -> dict[str, Any]:
        """The caller's organisation's active matches with the next session (and a missing
        intake measure) due, the follow-ups due after planned endings, and the mentors whose
        supervision or criminal record check falls due within 14 days; overdue first."""
        with adapters.database.read() as session:
            return caseload.caseload(session, caller, date.today(), adapters.rules,
                                     adapters.session_every)

    return routes
