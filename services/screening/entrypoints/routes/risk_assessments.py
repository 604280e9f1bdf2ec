"""``/v1/risk-assessments``: DASH risk checklists, scored against the MARAC criteria."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.screening.bootstrap import ScreeningAdapters
from services.screening.domain import access
from services.screening.entrypoints.routes import ERASED, roles_of
from services.screening.service_layer import risk
from services.screening.service_layer.commands import RecordRiskAssessment
from shared.auth import Principal
from shared.http import subject_errors


def router(adapters: ScreeningAdapters) -> APIRouter:
    """The risk-assessment route wired to the adapters."""
    routes = APIRouter()
    a = adapters

    @routes.post("/v1/risk-assessments", status_code=201, responses=ERASED)
    def risk_assessment(body: RecordRiskAssessment, caller: Annotated[Principal, Depends(
            roles_of(a.authorizer, access.RECORD_RISK_ASSESSMENT))]) -> dict[str, Any]:
        """Score a DASH checklist and apply the MARAC criteria; raises a referral at once
        (a repeat when the person had one in the 12 months before, by anyone)."""
        with subject_errors():
            return risk.record_risk_assessment(
                caller, body, database=a.database, cipher=a.cipher, records=a.records,
                registry=a.registry, keys=a.keys, safeguarding=a.safeguarding,
                escalation_incidents=a.thresholds.marac_escalation_incidents)

    return routes
