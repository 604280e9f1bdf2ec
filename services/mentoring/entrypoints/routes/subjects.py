"""``/v1/subjects/{id}/export``: subject access, for a DPO of an organisation with a
relationship with the person."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.domain import access
from services.mentoring.entrypoints.errors import errors
from services.mentoring.entrypoints.routes import SUBJECT_ID
from services.mentoring.service_layer import safeguarding
from shared.auth import Principal
from shared.http import errors as error_statuses


def router(adapters: MentoringAdapters) -> APIRouter:
    """The subject access route wired to the adapters."""
    routes = APIRouter()

    @routes.get("/v1/subjects/{subject_id}/export", responses=error_statuses((
        404, "Nothing held about this person for your organisation (as for an unknown "
        "person).")))
    def subject_export(subject_id: Annotated[str, SUBJECT_ID], caller: Annotated[
            Principal, Depends(adapters.authorizer.require(*sorted(access.SUBJECT_EXPORTERS)))]
                       ) -> dict[str, Any]:
        """Subject access: everything mentoring holds about the person for the DPO's own
        organisation, decrypted (a person it has no relationship with is not found)."""
        with errors():
            return safeguarding.export_subject(adapters.database, adapters.consent,
                                               adapters.cipher, adapters.records, subject_id,
                                               caller)

    return routes
