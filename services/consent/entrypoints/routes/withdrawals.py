"""``/v1/subjects/{id}/withdrawals`` and ``/v1/withdrawals``: withdrawing consent at once, and
following each withdrawal's cascade through the services."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.purposes import UnknownPurpose, expand_purposes
from services.consent.entrypoints.routes._common import (
    LIVE_SUBJECT,
    RECORDERS,
    SUBJECT_ID,
    consent_subject_errors,
)
from services.consent.service_layer import consents, erasure
from shared.auth import Principal
from shared.events.vocabulary import ConsentMethod, OrgIds
from shared.http import ApiError, errors

WITHDRAWAL_ID = Path(pattern=r"^wd_[0-9a-f]{32}$", description="a withdrawal id")


class WithdrawalIn(BaseModel):
    """A withdrawal: as easy as giving consent."""

    model_config = ConfigDict(extra="forbid")

    purposes: list[str] = Field(min_length=1, description='purposes, or ["all"]',
                                examples=[["peer-mentoring"], ["all"]])
    erasure: bool = Field(default=False, description="also file an erasure request, which "
                                                     "your data protection officer decides "
                                                     "(the withdrawal itself is immediate)")
    method: ConsentMethod = Field(description="verbal, written or electronic")
    recorded_by: str | None = Field(default=None, min_length=1, max_length=200,
                                    description="the member of staff who recorded it")
    recipients: OrgIds | None = Field(
        default=None, description="with partner-sharing: stop sharing with these recipients "
                                  "only (default: every recipient)")

    @field_validator("purposes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        try:
            expand_purposes(value)
        except UnknownPurpose as exc:
            raise ValueError(str(exc)) from None
        return value


class WithdrawalAccepted(BaseModel):
    """A withdrawal recorded; its cascade is under way. With erasure asked for, the erasure
    request filed beside it awaits the data protection officer's decision (the answer is the
    same whoever else holds the person)."""

    withdrawal_id: str
    status: Literal["pending"] = "pending"
    erasure_request_id: str | None = None
    erasure_request_status: Literal["awaiting-dpo-decision"] | None = None


def accepted(filed: erasure.Filed) -> WithdrawalAccepted:
    """The answer to a withdrawal filed with an erasure request."""
    return WithdrawalAccepted(withdrawal_id=filed.withdrawal_id,
                              erasure_request_id=filed.erasure_request_id,
                              erasure_request_status="awaiting-dpo-decision")


def router(adapters: ConsentAdapters) -> APIRouter:
    """Withdrawals and their cascades."""
    routes = APIRouter()
    auth, database = adapters.authorizer, adapters.database
    deadline_seconds = adapters.settings.cascade_deadline_seconds

    @routes.post("/v1/subjects/{subject_id}/withdrawals", status_code=202,
                 response_model=WithdrawalAccepted, response_model_exclude_none=True,
                 responses=LIVE_SUBJECT)
    def withdraw(subject_id: Annotated[str, SUBJECT_ID], body: WithdrawalIn,
                 caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                 ) -> WithdrawalAccepted:
        """Withdraw consent at once (and, with erasure, file an erasure request for your data
        protection officer); every service acknowledges the withdrawal in turn."""
        with consent_subject_errors(), database.unit_of_work() as uow:
            if body.erasure:
                return accepted(erasure.request_erasure(
                    uow, subject_id, body.purposes, body.method, caller, deadline_seconds,
                    body.recorded_by, body.recipients, trail=adapters.trail))
            withdrawal_id = consents.withdraw(
                uow, subject_id, body.purposes, False, body.method, caller, deadline_seconds,
                body.recorded_by, body.recipients, trail=adapters.trail)
        return WithdrawalAccepted(withdrawal_id=withdrawal_id)

    @routes.get("/v1/withdrawals/{withdrawal_id}", responses=errors((
        404, "No withdrawal your organisation recorded has this id.")))
    def withdrawal(withdrawal_id: Annotated[str, WITHDRAWAL_ID],
                   caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                   ) -> dict[str, Any]:
        """A withdrawal your organisation recorded: its status and each acknowledgement."""
        with database.read() as session:
            try:
                return consents.withdrawal_view(session, withdrawal_id, caller.org)
            except consents.WithdrawalNotFound:
                raise ApiError(404, "unknown-withdrawal", "no withdrawal has this id",
                               field="withdrawal_id") from None

    @routes.get("/v1/withdrawals")
    def withdrawals(caller: Annotated[Principal, Depends(auth.require(*RECORDERS))],
                    status: Annotated[Literal["pending", "overdue", "complete"],
                                      Query(description="overdue: what needs a human")]
                    = "overdue") -> dict[str, Any]:
        """Your organisation's withdrawals in one status (a DPO's too: their own only)."""
        with database.read() as session:
            rows = consents.withdrawals_with_status(session, status, caller.org)
        return {"status": status, "withdrawals": rows}

    return routes
