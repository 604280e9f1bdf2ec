"""The screening service's HTTP API (port 8101)."""


from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path

from services.screening.bootstrap import ScreeningService
from services.screening.service_layer.commands import RecordScreening
from services.screening.service_layer.screenings import (
    find_screening,
    record_screening,
    screening_view,
)
from shared.auth import NotPermitted, Principal
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.http import ApiError, create_api
from shared.settings import PlatformSettings


def build_api(service: ScreeningService) -> FastAPI:
    """The screening API wired to its service."""
    app = create_api("screening", title="Peerlink screening service",
                     description="Routine enquiry for domestic violence and abuse (HARK and "
                                 "lifetime abuse), DASH risk checklist and MARAC referrals.",
                     readiness=[service.database.ping])
    auth = service.authorizer

    @app.post("/v1/screenings", status_code=201)
    def post_screening(body: RecordScreening, caller: Annotated[
            Principal, Depends(auth.require("clinician", "service"))]) -> dict[str, Any]:
        """Record a routine enquiry; returns the record with its HARK score and findings."""
        if body.org != caller.org:
            raise NotPermitted("you may record enquiries only for your own organisation")
        subject_id = resolve(service, body.nhs_number, body.subject_id)
        try:
            with service.database.unit_of_work() as uow:
                screening_id = record_screening(uow, service.cipher, body, subject_id,
                                                caller.org)
                return screening_view(find_screening(uow, screening_id), service.cipher)
        except KeyStoreUnavailable:
            raise ApiError(503, "key-store-unavailable",
                           "the consent service is unavailable; nothing was recorded, "
                           "try again") from None

    @app.get("/v1/screenings/{screening_id}")
    def get_screening(screening_id: Annotated[str, Path(max_length=40)], caller: Annotated[
            Principal, Depends(auth.require("clinician"))]) -> dict[str, Any]:
        """One screening record of the caller's organisation."""
        with service.database.unit_of_work() as uow:
            row = find_screening(uow, screening_id)
            if row is None or row.org != caller.org:
                raise ApiError(404, "not-found", "no screening with this id in your organisation")
            return screening_view(row, service.cipher)

    return app


def resolve(service: ScreeningService, nhs_number: str | None, subject_id: str | None) -> str:
    """The subject reference, or the HTTP error that explains why there is none."""
    try:
        return service.resolve_subject(nhs_number, subject_id)
    except (UnknownSubject, KeyShredded):
        raise ApiError(422, "unknown-subject", "no registered person has this subject reference",
                       field="subject_id") from None
    except KeyStoreUnavailable:
        raise ApiError(503, "consent-unavailable", "the consent service is unavailable; "
                       "nothing was recorded, try again") from None


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ScreeningService(settings))
