"""``/v1/team-training``: how many of a team's staff are trained in routine enquiry, so
coverage can be read against it (about staff, not about anyone in the programme)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.screening.bootstrap import ScreeningAdapters
from services.screening.domain import access
from services.screening.entrypoints.routes import roles_of
from services.screening.service_layer import screenings
from services.screening.service_layer.commands import RecordTeamTraining
from shared.auth import Principal


def router(adapters: ScreeningAdapters) -> APIRouter:
    """The team-training routes wired to the adapters."""
    routes = APIRouter()
    a = adapters
    may_record = roles_of(a.authorizer, access.RECORD_TEAM_TRAINING)

    @routes.post("/v1/team-training", status_code=201)
    def post_team_training(body: RecordTeamTraining,
                           caller: Annotated[Principal, Depends(may_record)]) -> dict[str, Any]:
        """Record how many of one of the caller's organisation's teams are trained."""
        return screenings.record_team_training(caller, body, database=a.database)

    @routes.get("/v1/team-training")
    def get_team_training(caller: Annotated[Principal, Depends(may_record)]
                          ) -> list[dict[str, Any]]:
        """The newest training record of each of the caller's organisation's teams."""
        return screenings.team_training_of(caller, database=a.database)

    return routes
