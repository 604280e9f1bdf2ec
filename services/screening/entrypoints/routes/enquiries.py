"""``/v1/enquiries/due``: someone was assessed and should be asked (coverage's denominator),
and the list of those not yet asked."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from services.screening.bootstrap import ScreeningAdapters
from services.screening.domain import access
from services.screening.entrypoints.routes import ERASED, roles_of
from services.screening.service_layer import screenings
from services.screening.service_layer.commands import RecordEnquiryDue
from shared.auth import Principal
from shared.events.vocabulary import Label
from shared.http import subject_errors


def router(adapters: ScreeningAdapters) -> APIRouter:
    """The enquiries-due routes wired to the adapters."""
    routes = APIRouter()
    a = adapters

    @routes.post("/v1/enquiries/due", status_code=201, responses=ERASED)
    def enquiry_due(body: RecordEnquiryDue, caller: Annotated[Principal, Depends(
            roles_of(a.authorizer, access.RECORD_ENQUIRY_DUE))]) -> dict[str, Any]:
        """Someone was assessed and should be asked: the denominator of coverage."""
        with subject_errors():
            return screenings.record_enquiry_due(caller, body, database=a.database,
                                                 registry=a.registry, keys=a.keys)

    @routes.get("/v1/enquiries/due")
    def open_enquiries(caller: Annotated[Principal, Depends(
            roles_of(a.authorizer, access.RECORD_ENQUIRY_DUE))],
                       team: Annotated[Label | None, Query(
                           description="only this team's")] = None) -> dict[str, Any]:
        """The caller's organisation's enquiries due that no enquiry has answered since,
        oldest first: a clinician's list to work from."""
        return {"enquiries_due": screenings.open_enquiries_due(
            caller, team, database=a.database, audit=a.registry)}

    return routes
