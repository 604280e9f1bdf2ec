"""``/v1/subject-access-requests`` (UK GDPR Art. 15) and ``/v1/subjects/{id}/export``: filed by
staff of an organisation with a relationship with the person; answered and read by that
organisation's DPO only (another organisation's request is a 404, like an unknown id), who
exports what consent holds about the person. Every read is audited."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.requests import AccessRequestStatus
from services.consent.entrypoints.routes._common import (
    LIVE_SUBJECT,
    RECORDERS,
    SUBJECT,
    SUBJECT_ID,
    SUBJECT_REFERENCE,
    consent_subject_errors,
    request_errors,
)
from services.consent.service_layer import access_requests
from shared.auth import Principal
from shared.http import errors

ACCESS_REQUEST_ID = Path(pattern=r"^sar_[0-9a-f]{32}$",
                         description="a subject access request id")
ACCESS_REQUEST = errors((404, "No subject access request your organisation filed has this id."))


class AccessRequestIn(BaseModel):
    """A person asks for a copy of everything held about them."""

    model_config = ConfigDict(extra="forbid")

    subject_id: str = SUBJECT_REFERENCE


def router(adapters: ConsentAdapters) -> APIRouter:
    """Filing, answering and following subject access requests, and the export."""
    routes = APIRouter()
    auth, database, trail = adapters.authorizer, adapters.database, adapters.trail
    dpo = Depends(auth.require("dpo"))

    @routes.post("/v1/subject-access-requests", status_code=201, responses=LIVE_SUBJECT)
    def file_access_request(body: AccessRequestIn,
                            caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                            ) -> dict[str, Any]:
        """A person asks for a copy of what is held about them: due in one calendar month."""
        with consent_subject_errors(), database.unit_of_work() as uow:
            return access_requests.file(uow, body.subject_id, caller, trail=trail)

    @routes.get("/v1/subject-access-requests")
    def access_request_list(caller: Annotated[Principal, dpo],
                            status: Annotated[AccessRequestStatus, Query(
                                description="open: what needs answering")]
                            = AccessRequestStatus.OPEN) -> dict[str, Any]:
        """Your organisation's subject access requests in one status, the soonest due first."""
        with database.unit_of_work() as uow:
            rows = access_requests.listed(uow, caller, status, trail=trail)
        return {"status": status.value, "subject_access_requests": rows}

    @routes.get("/v1/subject-access-requests/{request_id}", responses=ACCESS_REQUEST)
    def access_request(request_id: Annotated[str, ACCESS_REQUEST_ID],
                       caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """A subject access request your organisation filed."""
        with request_errors(), database.unit_of_work() as uow:
            return access_requests.read(uow, request_id, caller, trail=trail)

    @routes.post("/v1/subject-access-requests/{request_id}/complete", responses={
        **ACCESS_REQUEST, **errors((409, "The request was completed already."))})
    def complete_access_request(request_id: Annotated[str, ACCESS_REQUEST_ID],
                                caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """Mark the request answered (``peerlink sar export`` does, once the bundle is
        written)."""
        with request_errors(), database.unit_of_work() as uow:
            return access_requests.complete(uow, request_id, caller, trail=trail)

    @routes.get("/v1/subjects/{subject_id}/export", responses=SUBJECT)
    def export(subject_id: Annotated[str, SUBJECT_ID], caller: Annotated[Principal, dpo]
               ) -> dict[str, Any]:
        """Everything consent holds about the person for your organisation, opened (the NHS
        number, consents, withdrawals, requests, and who saw what)."""
        with consent_subject_errors():
            return access_requests.export_subject(database, adapters.keys, adapters.records,
                                                  subject_id, caller, trail=trail)

    return routes
