"""``/v1/enquiries/due``: someone was assessed and should be asked (coverage's denominator)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.screening.bootstrap import ScreeningAdapters
from services.screening.domain import access
from services.screening.entrypoints.routes import ERASED, roles_of
from services.screening.service_layer import screenings
from services.screening.service_layer.commands import RecordEnquiryDue
from shared.auth import Principal
from shared.http import subject_errors


def router(adapters: ScreeningAdapters) -> APIRouter:
    """The enquiries-due route wired to the adapters."""
    routes = APIRouter()
    a = adapters

    @routes.post("/v1/enquiries/due", status_code=201, responses=ERASED)
    def enquiry_due(body: RecordEnquiryDue, caller: Annotated[Principal, Depends(
            roles_of(a.authorizer, access.RECORD_ENQUIRY_DUE))]) -> dict[str, Any]:
        """Someone was assessed and should be asked: the denominator of coverage."""
        with subject_errors():
            return screenings.record_enquiry_due(caller, body, database=a.database,
                                                 registry=a.registry, keys=a.keys)

    return routes
