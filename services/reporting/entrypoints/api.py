"""The reporting service's HTTP API (port 8104): disclosure-controlled figures only."""


from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query

from services.reporting.bootstrap import ReportingService
from services.reporting.domain.figures import LAST_12_MONTHS, months_in, prevalence_rows
from services.reporting.service_layer.read_model import latest_release
from shared.auth import Principal
from shared.http import create_api
from shared.settings import PlatformSettings

GroupBy = Literal["org", "team", "borough", "gender", "age_band"]
PERIOD = Query(pattern=r"^(\d{4}-(0[1-9]|1[0-2])|last-12-months)$",
               description="a calendar month YYYY-MM, or last-12-months")


def build_api(service: ReportingService) -> FastAPI:
    """The reporting API wired to its read model."""
    app = create_api("reporting", title="Peerlink reporting service",
                     description="Live, de-identified, disclosure-controlled figures.",
                     readiness=[service.database.ping])
    auth = service.authorizer

    @app.get("/v1/prevalence")
    def prevalence(_caller: Annotated[Principal, Depends(auth.require("ops-viewer"))],
                   group_by: GroupBy = "org",
                   period: Annotated[str, PERIOD] = LAST_12_MONTHS) -> dict[str, Any]:
        """Prevalence of current, past and either abuse among people screened."""
        release = latest_release(service.database)
        if release is None:
            return {"released_at": None, "group_by": group_by, "period": period, "rows": [],
                    "method": service.policy.method}
        released_at, cells = release
        rows = prevalence_rows(cells, group_by, months_in(period, released_at.date()),
                               service.policy)
        return {"released_at": released_at.isoformat(), "group_by": group_by, "period": period,
                "rows": rows, "method": service.policy.method}

    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ReportingService(settings))
