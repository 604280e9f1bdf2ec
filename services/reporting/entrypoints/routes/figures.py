"""Figures: prevalence, coverage, the mentoring funnel, the feasibility funnel and offers of
mentoring, disclosure-controlled, as JSON or as CSV (``?format=csv`` or ``Accept: text/csv``),
for ops-viewers (by token or session)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from services.reporting.bootstrap import ReportingAdapters
from services.reporting.domain.people import LAST_12_MONTHS
from services.reporting.entrypoints.access import ReportingAccess
from services.reporting.entrypoints.csv_export import to_csv
from services.reporting.service_layer.read_model import published_figures
from services.reporting.service_layer.viewing import VIEWER
from shared.auth import Principal

GroupBy = Literal["org", "team", "borough", "gender", "age_band", "month"]
EngagementGroupBy = Literal["org", "team", "borough", "gender", "age_band", "month",
                            "referred_by"]
FeasibilityGroupBy = Literal["org", "gender", "age_band", "month"]
OffersGroupBy = Literal["org", "team", "gender", "age_band", "month"]
PERIOD = Query(pattern=r"^(\d{4}-(0[1-9]|1[0-2])|last-12-months)$",
               description="a calendar month YYYY-MM, or last-12-months")


def wants_csv(request: Request) -> bool:
    """``?format=csv`` or ``Accept: text/csv``."""
    return request.query_params.get("format") == "csv" or \
        "text/csv" in request.headers.get("accept", "")


def router(adapters: ReportingAdapters, access: ReportingAccess) -> APIRouter:
    """``/v1/prevalence``, ``/v1/coverage``, ``/v1/engagement``, ``/v1/feasibility`` and
    ``/v1/mentoring-offers``."""
    routes = APIRouter()
    viewer = access.require(VIEWER)

    def figures(table: str, group_by: str, period: str, request: Request) -> Response:
        body = published_figures(adapters.database, table, group_by, period, adapters.policy,
                                 adapters.outcome_rules)
        if wants_csv(request):
            return Response(to_csv(body["rows"]), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition":
                                     f'attachment; filename="{table}-{group_by}.csv"'})
        return JSONResponse(body)

    @routes.get("/v1/prevalence")
    def prevalence(request: Request, _caller: Annotated[Principal, Depends(viewer)],
                   group_by: GroupBy = "org",
                   period: Annotated[str, PERIOD] = LAST_12_MONTHS) -> Response:
        """Prevalence of current, past and either abuse among people screened (asked)."""
        return figures("prevalence", group_by, period, request)

    @routes.get("/v1/coverage")
    def coverage(request: Request, _caller: Annotated[Principal, Depends(viewer)],
                 group_by: GroupBy = "org",
                 period: Annotated[str, PERIOD] = LAST_12_MONTHS) -> Response:
        """Screened over due, declined, not safe to ask, asked in private, MARAC referrals."""
        return figures("coverage", group_by, period, request)

    @routes.get("/v1/engagement")
    def engagement(request: Request, _caller: Annotated[Principal, Depends(viewer)],
                   group_by: EngagementGroupBy = "org",
                   period: Annotated[str, PERIOD] = LAST_12_MONTHS) -> Response:
        """The mentoring funnel, people by their episode: referred, matched, attended a session,
        endings, days to match, active mentees and SWEMWBS change; ``org`` is the organisation
        receiving the referral, ``referred_by`` the referring one."""
        return figures("engagement", group_by, period, request)

    @routes.get("/v1/feasibility")
    def feasibility(request: Request, _caller: Annotated[Principal, Depends(viewer)],
                    group_by: FeasibilityGroupBy = "org",
                    period: Annotated[str, PERIOD] = LAST_12_MONTHS) -> Response:
        """The feasibility funnel, people by the month they entered: due, asked, disclosed,
        referred, matched, attended a session, planned ending, followed up at 3, 6 and 12
        months, and the people known to have left."""
        return figures("feasibility", group_by, period, request)

    @routes.get("/v1/mentoring-offers")
    def mentoring_offers(request: Request, _caller: Annotated[Principal, Depends(viewer)],
                         group_by: OffersGroupBy = "org",
                         period: Annotated[str, PERIOD] = LAST_12_MONTHS) -> Response:
        """Offers of peer mentoring and what people said: accepted, declined (and why),
        undecided."""
        return figures("offers", group_by, period, request)

    return routes
