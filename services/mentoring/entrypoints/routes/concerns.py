"""``/v1/safeguarding-concerns``: concerns raised from any contact, and the Trust's
safeguarding lead's queue they are worked through."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.domain import access
from services.mentoring.entrypoints.errors import errors
from services.mentoring.entrypoints.routes import ID
from services.mentoring.service_layer import safeguarding
from services.mentoring.service_layer.commands import ConcernNote, RaiseConcern
from shared.auth import Principal
from shared.http import errors as error_statuses

QUEUE_STATUS = Literal["open", "acknowledged", "actioned", "closed"]
CONCERN = error_statuses((404, "No safeguarding concern with this id."),
                         (409, "The concern is not in the state this step leaves."))


def router(adapters: MentoringAdapters) -> APIRouter:
    """The safeguarding concerns routes wired to the adapters."""
    routes = APIRouter()
    lead = Depends(adapters.authorizer.require("safeguarding-lead"))

    @routes.post("/v1/safeguarding-concerns", status_code=201, responses=error_statuses(410))
    def raise_concern(body: RaiseConcern, caller: Annotated[Principal, Depends(
            adapters.authorizer.require(*sorted(access.CONCERN_RAISERS)))]) -> dict[str, Any]:
        """Raise a concern from any contact (waitlisted, after an ending, at withdrawal) about
        a person the caller's organisation has a relationship with; it goes to the Trust's
        safeguarding lead's queue at once."""
        with errors():
            return safeguarding.raise_concern(adapters.database, adapters.consent,
                                              adapters.cipher, adapters.records, body, caller)

    def take_step(concern_id: str, taken: access.ConcernStep, caller: Principal,
                  note: str | None) -> dict[str, Any]:
        with errors(), adapters.database.unit_of_work() as uow:
            return safeguarding.step(uow, adapters.records, concern_id, taken, caller, note)

    @routes.post("/v1/safeguarding-concerns/{concern_id}/acknowledge", responses=CONCERN)
    def acknowledge(concern_id: Annotated[str, ID],
                    caller: Annotated[Principal, lead]) -> dict[str, Any]:
        """The safeguarding lead has seen the concern (open to acknowledged)."""
        return take_step(concern_id, "acknowledge", caller, None)

    @routes.post("/v1/safeguarding-concerns/{concern_id}/action", responses=CONCERN)
    def action(concern_id: Annotated[str, ID], body: ConcernNote,
               caller: Annotated[Principal, lead]) -> dict[str, Any]:
        """The concern was acted on (acknowledged to actioned), with a short note."""
        return take_step(concern_id, "action", caller, body.note)

    @routes.post("/v1/safeguarding-concerns/{concern_id}/close", responses=CONCERN)
    def close(concern_id: Annotated[str, ID], body: ConcernNote,
              caller: Annotated[Principal, lead]) -> dict[str, Any]:
        """The concern is closed (actioned to closed), with a short note."""
        return take_step(concern_id, "close", caller, body.note)

    @routes.get("/v1/safeguarding-concerns")
    def safeguarding_queue(caller: Annotated[Principal, Depends(adapters.authorizer.require(
                               "safeguarding-lead", "dpo"))],
                           status: Annotated[QUEUE_STATUS | None, Query()] = "open",
                           flagged_for_dpo: Annotated[bool | None, Query()] = None
                           ) -> dict[str, Any]:
        """The Trust's safeguarding lead's queue, with each concern's state history, repeat
        flag and safe contact; a DPO sees only those flagged by erasure (a partner's DPO,
        those its own organisation raised), without the safe contact."""
        with errors():
            return {"concerns": safeguarding.queue(adapters.database, adapters.consent,
                                                   adapters.records, caller, status,
                                                   flagged_for_dpo)}

    return routes
