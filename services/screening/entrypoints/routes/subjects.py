"""``/v1/subjects/{subject_id}/...``: what screening holds about one person, as results the
caller may see and as the DPO's subject access export."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.routes import SUBJECT_ID, anyone
from services.screening.service_layer import subjects
from shared.auth import Principal
from shared.http import errors, subject_errors


def router(adapters: ScreeningAdapters) -> APIRouter:
    """The subject routes wired to the adapters."""
    routes = APIRouter()
    a = adapters
    caller_of_any_role = Depends(anyone(a.authorizer))

    @routes.get("/v1/subjects/{subject_id}/results")
    def results(subject_id: Annotated[str, SUBJECT_ID],
                caller: Annotated[Principal, caller_of_any_role]) -> dict[str, Any]:
        """A person's screening and risk results that the caller may see: their own
        organisation's, and those another organisation shared with theirs. Nothing shows
        whether anyone else holds records (200, possibly empty), and the audit entry is the
        same read either way, since the caller's own DPO reads it."""
        with subject_errors():
            return subjects.results(caller, subject_id, database=a.database, cipher=a.cipher,
                                    records=a.records, audit=a.registry)

    @routes.get("/v1/subjects/{subject_id}/export", responses=errors((
        404, "Nothing held about this person for the caller's organisation (as for an unknown "
        "person).")))
    def export(subject_id: Annotated[str, SUBJECT_ID],
               caller: Annotated[Principal, caller_of_any_role]) -> dict[str, Any]:
        """Subject access: everything screening holds about the person for the DPO's own
        organisation (screenings with notes, risk assessments with answers, MARAC referrals
        with safe contact), opened. Needs a relationship with the person; audited."""
        with subject_errors():
            return subjects.export(caller, subject_id, database=a.database, cipher=a.cipher,
                                   records=a.records, audit=a.registry)

    return routes
