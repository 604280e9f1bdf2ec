"""The reporting service's HTTP API (port 8104): disclosure-controlled figures only."""


from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse

from services.reporting.bootstrap import ReportingService
from services.reporting.domain.figures import WHO_COUNTS, rows_of
from services.reporting.domain.people import LAST_12_MONTHS
from services.reporting.entrypoints.access import ReportingAccess
from services.reporting.entrypoints.csv_export import to_csv
from services.reporting.entrypoints.dashboard import add_dashboard
from services.reporting.service_layer.read_model import latest_release
from shared.auth import Principal
from shared.http import create_api
from shared.settings import PlatformSettings

GroupBy = Literal["org", "team", "borough", "gender", "age_band", "month"]
EngagementGroupBy = Literal["org", "team", "borough", "gender", "age_band", "month",
                            "referred_by"]
PERIOD = Query(pattern=r"^(\d{4}-(0[1-9]|1[0-2])|last-12-months)$",
               description="a calendar month YYYY-MM, or last-12-months")


def build_api(service: ReportingService) -> FastAPI:
    """The reporting API wired to its read model."""
    app = create_api("reporting", title="Peerlink reporting service",
                     description="Live, de-identified, disclosure-controlled figures.",
                     readiness=[service.database.ping])
    access = ReportingAccess(service.authorizer, service.sessions)

    def figures(kind: str, group_by: str, period: str, request: Request) -> Response:
        release = latest_release(service.database)
        rows: list[dict[str, Any]] = []
        released_at = None
        if release is not None:
            released_at, published = release
            rows = rows_of(kind, group_by, published.get(kind, {}).get(group_by, {})
                           .get(period, []), service.policy, service.outcome_rules,
                           service.policy.k)
        body = {"released_at": released_at.isoformat() if released_at else None,
                "group_by": group_by, "period": period, "rows": rows,
                "method": f"{WHO_COUNTS[kind]} {service.policy.method}",
                "k": service.policy.k, "held_rule": service.policy.held_rule}
        if wants_csv(request):
            return Response(to_csv(rows), media_type="text/csv; charset=utf-8", headers={
                "Content-Disposition": f'attachment; filename="{kind}-{group_by}.csv"'})
        return JSONResponse(body)

    viewer = access.require("ops-viewer")  # a bearer token, or a dashboard session

    @app.get("/v1/prevalence")
    def prevalence(request: Request, _caller: Annotated[Principal, Depends(viewer)],
                   group_by: GroupBy = "org",
                   period: Annotated[str, PERIOD] = LAST_12_MONTHS) -> Response:
        """Prevalence of current, past and either abuse among people screened (asked)."""
        return figures("prevalence", group_by, period, request)

    @app.get("/v1/coverage")
    def coverage(request: Request, _caller: Annotated[Principal, Depends(viewer)],
                 group_by: GroupBy = "org",
                 period: Annotated[str, PERIOD] = LAST_12_MONTHS) -> Response:
        """Screened over due, declined, not safe to ask, asked in private, MARAC referrals."""
        return figures("coverage", group_by, period, request)

    @app.get("/v1/engagement")
    def engagement(request: Request, _caller: Annotated[Principal, Depends(viewer)],
                   group_by: EngagementGroupBy = "org",
                   period: Annotated[str, PERIOD] = LAST_12_MONTHS) -> Response:
        """The mentoring funnel, people by their episode: referred, matched, attended a session,
        endings, days to match, active mentees and SWEMWBS change; ``org`` is the organisation
        receiving the referral, ``referred_by`` the referring one."""
        return figures("engagement", group_by, period, request)

    add_dashboard(app, service)
    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ReportingService(settings))


def wants_csv(request: Request) -> bool:
    """``?format=csv`` or ``Accept: text/csv``."""
    return request.query_params.get("format") == "csv" or \
        "text/csv" in request.headers.get("accept", "")
