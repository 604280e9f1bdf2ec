"""``/v1/sessions``: mentoring sessions, logged by the receiving organisation; a
safeguarding concern raised in one goes to the Trust's safeguarding lead."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.errors import MATCH, errors
from services.mentoring.entrypoints.routes.referrals import RECORDERS
from services.mentoring.service_layer import mentoring
from services.mentoring.service_layer.commands import LogSession
from shared.auth import Principal
from shared.http import errors as error_statuses


def router(adapters: MentoringAdapters) -> APIRouter:
    """The sessions route wired to the adapters."""
    routes = APIRouter()

    @routes.post("/v1/sessions", status_code=201, responses=error_statuses(MATCH, 410, (
        409, "The match has ended: sessions are logged on active matches only.")))
    def log_session(body: LogSession, caller: Annotated[
            Principal, Depends(adapters.authorizer.require(*RECORDERS))]) -> dict[str, Any]:
        """Log a session, with the intervention's components it covered; a safeguarding
        concern goes to the Trust's safeguarding lead."""
        with errors(), adapters.database.unit_of_work() as uow:
            return mentoring.log_session(uow, adapters.keys, adapters.cipher, adapters.records,
                                         adapters.consent, body, caller, adapters.intervention)

    return routes
