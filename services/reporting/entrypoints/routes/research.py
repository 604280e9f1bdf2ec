"""``/v1/research/...``: the study's pseudonymised extract and its research figures, for the
researchers of the sponsoring Trust, research-consented people only, each taking logged; the
log for the sponsoring Trust's DPO."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.access import ReportingAccess
from services.reporting.entrypoints.csv_export import to_csv
from services.reporting.entrypoints.routes.figures import wants_csv
from services.reporting.service_layer import research
from shared.auth import Principal

RESEARCHER = "researcher"
ResearchGroupBy = Literal["org", "gender", "age_band", "month"]


NOT_STORED = {"Cache-Control": "no-store"}
"""Person-level research data is kept by no cache on the way."""


def _answer(body: dict[str, Any], name: str, request: Request) -> Response:
    if wants_csv(request):
        return Response(to_csv(body["rows"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"',
                                 "Peerlink-Extract-Id": body["extract_id"], **NOT_STORED})
    return JSONResponse(body, headers=NOT_STORED)


def router(adapters: ReportingAdapters, access: ReportingAccess, key: bytes) -> APIRouter:
    """The research extract (pseudonyms under the study ``key``), the research figures and
    the log of both."""
    routes = APIRouter()
    researcher = access.require(RESEARCHER)
    dpo = access.require("dpo")
    sponsor = adapters.research_sponsor

    @routes.get("/v1/research/extract")
    def extract(request: Request, caller: Annotated[Principal, Depends(researcher)]
                ) -> Response:
        """One row per research-consented person, under the study pseudonym (JSON or CSV)."""
        return _answer(research.take_extract(adapters.database, key, caller,
                                             sponsor), "research-extract", request)

    @routes.get("/v1/research/feasibility")
    def feasibility(request: Request, caller: Annotated[Principal, Depends(researcher)],
                    group_by: ResearchGroupBy = "org") -> Response:
        """The feasibility funnel of the research-consented people, disclosure-controlled."""
        return _answer(research.take_figures(
            adapters.database, "feasibility", group_by, adapters.policy,
            adapters.outcome_rules, caller, sponsor), f"research-feasibility-{group_by}",
            request)

    @routes.get("/v1/research/engagement")
    def engagement(request: Request, caller: Annotated[Principal, Depends(researcher)],
                   group_by: ResearchGroupBy = "org") -> Response:
        """Mentoring episodes of the research-consented people, with the share of sessions
        covering each component, disclosure-controlled."""
        return _answer(research.take_figures(
            adapters.database, "engagement", group_by, adapters.policy,
            adapters.outcome_rules, caller, sponsor), f"research-engagement-{group_by}",
            request)

    @routes.get("/v1/research/extracts")
    def extracts_taken(caller: Annotated[Principal, Depends(dpo)]) -> dict[str, Any]:
        """Every research extract and figures taken: who, when, how many people, digest."""
        return {"extracts": research.extracts_taken(adapters.database, caller, sponsor)}

    return routes
