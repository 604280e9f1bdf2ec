"""The screening service's HTTP API (port 8101): its routers, one per resource, and the one
mapping of what the use cases find missing (``NotFound``) to a 404.

Who may do what is decided in ``services.screening.domain.access`` and applied by the use
cases (``service_layer``), which audit every read of identifiable data, allowed or refused,
through the consent service before anything is shown. What consent says of a person is
mapped by ``shared.http.subject_errors``, an unavailable consent service by ``create_api``.
"""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.routes import (
    enquiries,
    marac_referrals,
    risk_assessments,
    screenings,
    subjects,
    team_training,
)
from services.screening.service_layer.permissions import NotFound
from shared.http import add_routes, create_api, error_body
from shared.settings import PlatformSettings

ROUTERS = (enquiries, screenings, subjects, risk_assessments, marac_referrals, team_training)
"""The routers in the order the OpenAPI document lists their paths."""


def build_api(adapters: ScreeningAdapters) -> FastAPI:
    """The screening API wired to its adapters."""
    app = create_api("screening", title="Peerlink screening service",
                     description="Routine enquiry for domestic violence and abuse (HARK and "
                                 "lifetime abuse), DASH risk checklist and MARAC referrals.",
                     readiness=[adapters.database.ping])
    add_routes(app, *(resource.router(adapters) for resource in ROUTERS))

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content=error_body("not-found", str(exc)))

    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ScreeningAdapters(settings))
