"""``/v1/screenings``: routine enquiries, recorded by the Trust's clinicians and read by those
the holder's records are open to."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.screening.bootstrap import ScreeningAdapters
from services.screening.domain import access
from services.screening.entrypoints.routes import ERASED, ID, anyone, roles_of
from services.screening.service_layer import screenings
from services.screening.service_layer.commands import RecordScreening
from shared.auth import Principal
from shared.http import errors, subject_errors


def router(adapters: ScreeningAdapters) -> APIRouter:
    """The screenings routes wired to the adapters."""
    routes = APIRouter()
    a = adapters

    @routes.post("/v1/screenings", status_code=201, responses=ERASED)
    def post_screening(body: RecordScreening, caller: Annotated[Principal, Depends(
            roles_of(a.authorizer, access.RECORD_SCREENING))]) -> dict[str, Any]:
        """Record a routine enquiry; returns the record with its HARK score and findings."""
        with subject_errors():
            return screenings.record_screening(caller, body, database=a.database,
                                               cipher=a.cipher, registry=a.registry,
                                               keys=a.keys)

    @routes.get("/v1/screenings/{screening_id}", responses=errors((
        404, "No screening with this id, or one the caller may not see (the same answer).")))
    def get_screening(screening_id: Annotated[str, ID],
                      caller: Annotated[Principal, Depends(anyone(a.authorizer))]
                      ) -> dict[str, Any]:
        """One screening record: the holder's own staff, or another organisation's with a
        relationship and the holder's partner-sharing naming it. A record the caller may not
        see is a 404, exactly as one that does not exist."""
        with subject_errors():
            return screenings.read_screening(caller, screening_id, database=a.database,
                                             cipher=a.cipher, audit=a.registry)

    return routes
