"""``/v1/mentors``: a DVA organisation's mentors, seen and changed by its coordinators."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.errors import errors
from services.mentoring.entrypoints.routes import ID
from services.mentoring.service_layer import mentoring
from services.mentoring.service_layer.commands import (
    ChangeMentorStatus,
    RecordSupervision,
    RegisterMentor,
)
from shared.auth import Principal
from shared.http import errors as error_statuses

MENTOR = error_statuses((404, "No mentor with this id in your organisation."))


def router(adapters: MentoringAdapters) -> APIRouter:
    """The mentors routes wired to the adapters."""
    routes = APIRouter()
    db, rules = adapters.database, adapters.rules
    coordinator = Depends(adapters.authorizer.require("mentor-coordinator"))

    @routes.post("/v1/mentors", status_code=201)
    def register_mentor(body: RegisterMentor,
                        caller: Annotated[Principal, coordinator]) -> dict[str, Any]:
        """Register a mentor of the coordinator's own organisation."""
        with db.unit_of_work() as uow:
            return mentoring.register_mentor(uow, body, caller.org, date.today(), rules)

    @routes.get("/v1/mentors")
    def list_mentors(caller: Annotated[Principal, coordinator]) -> dict[str, Any]:
        """The coordinator's own organisation's mentors."""
        with db.read() as session:
            return {"mentors": mentoring.list_mentors(session, caller.org, date.today(),
                                                      rules)}

    @routes.get("/v1/mentors/{mentor_id}", responses=MENTOR)
    def get_mentor(mentor_id: Annotated[str, ID],
                   caller: Annotated[Principal, coordinator]) -> dict[str, Any]:
        """One mentor of the coordinator's organisation."""
        with errors(), db.read() as session:
            return mentoring.get_mentor(session, mentor_id, caller.org, date.today(), rules)

    @routes.post("/v1/mentors/{mentor_id}/supervision", responses=MENTOR)
    def supervision(mentor_id: Annotated[str, ID], body: RecordSupervision,
                    caller: Annotated[Principal, coordinator]) -> dict[str, Any]:
        """Record supervision and what it covered; waitlisted referrals are matched if the
        mentor now can take them."""
        with errors(), db.unit_of_work() as uow:
            return mentoring.record_supervision(uow, mentor_id, caller.org, body, date.today(),
                                                rules, adapters.intervention)

    @routes.post("/v1/mentors/{mentor_id}/status", responses=MENTOR)
    def status(mentor_id: Annotated[str, ID], body: ChangeMentorStatus,
               caller: Annotated[Principal, coordinator]) -> dict[str, Any]:
        """Change a mentor's status; becoming matchable matches waitlisted referrals."""
        with errors(), db.unit_of_work() as uow:
            return mentoring.change_status(uow, mentor_id, caller.org, body.status,
                                           date.today(), rules)

    return routes
