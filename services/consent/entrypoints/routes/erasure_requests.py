"""``/v1/erasure-requests`` (UK GDPR Art. 17): filed by staff of an organisation with a
relationship with the person; decided, extended and read by that organisation's DPO only.
Another organisation's request is a 404, exactly like an unknown id. Every decision,
extension and read is audited."""

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.requests import Decision, ErasureStatus
from services.consent.entrypoints.routes._common import (
    LIVE_SUBJECT,
    RECORDERS,
    SUBJECT_REFERENCE,
    consent_subject_errors,
    request_errors,
)
from services.consent.entrypoints.routes.withdrawals import WithdrawalAccepted, accepted
from services.consent.service_layer import erasure
from shared.auth import Principal
from shared.events.vocabulary import ConsentMethod, RetainedKinds
from shared.http import errors

log = logging.getLogger(__name__)
ERASURE_REQUEST_ID = Path(pattern=r"^er_[0-9a-f]{32}$", description="an erasure request id")
ERASURE_REQUEST = errors((404, "No erasure request your organisation filed has this id."))


class ErasureRequestIn(BaseModel):
    """A person asks to be erased: their consents are withdrawn at once and the request goes to
    the data protection officer."""

    model_config = ConfigDict(extra="forbid")

    subject_id: str = SUBJECT_REFERENCE
    method: ConsentMethod = Field(description="verbal, written or electronic")
    recorded_by: str | None = Field(default=None, min_length=1, max_length=200,
                                    description="the member of staff who recorded it")


class DecisionIn(BaseModel):
    """The data protection officer's decision on an erasure request (made once)."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision = Field(description="approve, approve-except-retained or refuse")
    reason: str | None = Field(
        default=None, min_length=1, max_length=2000,
        description="required to refuse or to approve except retained records: the person "
                    "must be told why (kept sealed, never logged)")
    retained: RetainedKinds | None = Field(
        default=None, description="approve-except-retained only, and required for it: the "
                                  "record kinds kept under another lawful basis")


class ExtensionIn(BaseModel):
    """One extension of an erasure request's deadline, by one or two further months."""

    model_config = ConfigDict(extra="forbid")

    months: Literal[1, 2] = Field(description="further months: 1 or 2")
    reason: str = Field(min_length=1, max_length=2000,
                        description="why the request needs longer (the person must be told)")


def router(adapters: ConsentAdapters) -> APIRouter:
    """Filing, deciding and following erasure requests."""
    routes = APIRouter()
    auth, database, records, trail = (adapters.authorizer, adapters.database, adapters.records,
                                      adapters.trail)
    dpo = Depends(auth.require("dpo"))

    @routes.post("/v1/erasure-requests", status_code=202, response_model=WithdrawalAccepted,
                 responses=LIVE_SUBJECT)
    def file_erasure(body: ErasureRequestIn,
                     caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                     ) -> WithdrawalAccepted:
        """A person asks to be erased: every purpose is withdrawn at once (erasure implies
        withdrawal) and the request awaits your data protection officer's decision. The answer
        is the same whoever else holds the person."""
        with consent_subject_errors(), database.unit_of_work() as uow:
            filed = erasure.request_erasure(
                uow, body.subject_id, ["all"], body.method, caller,
                adapters.settings.cascade_deadline_seconds, body.recorded_by, trail=trail)
        return accepted(filed)

    @routes.get("/v1/erasure-requests")
    def erasure_requests(caller: Annotated[Principal, dpo],
                         status: Annotated[ErasureStatus, Query(
                             description="awaiting-dpo-decision: what needs your decision")]
                         = ErasureStatus.AWAITING) -> dict[str, Any]:
        """Your organisation's erasure requests in one status, the soonest due first."""
        with database.unit_of_work() as uow:
            rows = erasure.listed(uow, records, caller, status, trail=trail)
        return {"status": status.value, "erasure_requests": rows}

    @routes.get("/v1/erasure-requests/{erasure_request_id}", responses=ERASURE_REQUEST)
    def erasure_request(erasure_request_id: Annotated[str, ERASURE_REQUEST_ID],
                        caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """An erasure request your organisation filed: its deadline, the decision and its
        reason, what was retained and each service's acknowledgement. ``scope`` (subject or
        organisation) is shown to you alone: it says whether another organisation holds the
        person independently, which the request's filer and the person are never told."""
        with request_errors(), database.unit_of_work() as uow:
            return erasure.read(uow, records, erasure_request_id, caller, trail=trail)

    @routes.post("/v1/erasure-requests/{erasure_request_id}/decision", responses={
        **ERASURE_REQUEST, **errors((409, "The request was decided already."))})
    def decide(erasure_request_id: Annotated[str, ERASURE_REQUEST_ID], body: DecisionIn,
               caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """Decide once: approve (erase), approve except named record kinds, or refuse (nothing
        changes; the reason is what the person is told)."""
        with request_errors(), database.unit_of_work() as uow:
            decided = erasure.decide(uow, adapters.keys, records, erasure_request_id,
                                     body.decision, body.reason, body.retained, caller,
                                     trail=trail)
        if decided.scrub and not database.scrub(decided.scrub):
            log.warning("the write-ahead log could not be truncated after an erasure; the "
                        "next checkpoint removes what it holds")
        return decided.view

    @routes.post("/v1/erasure-requests/{erasure_request_id}/extension", responses={
        **ERASURE_REQUEST, **errors((409, "The deadline was extended already."))})
    def extend(erasure_request_id: Annotated[str, ERASURE_REQUEST_ID], body: ExtensionIn,
               caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """Extend the deadline once, by one or two further months, saying why."""
        with request_errors(), database.unit_of_work() as uow:
            return erasure.extend(uow, records, erasure_request_id, body.months,
                                  body.reason, caller, trail=trail)

    return routes
