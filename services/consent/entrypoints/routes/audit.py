"""``/v1/audit``: the audit trail for the DPO, its verification against the published heads,
and the entries other services write about their own accesses."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.callers import SERVICE_ACCESS, ForeignAuditAction
from services.consent.service_layer import audit
from shared.auth import Principal
from shared.http import ApiError
from shared.identity import SUBJECT_PATTERN


class AuditIn(BaseModel):
    """An access another service audits: who acted comes from the verified tokens (the
    person's, on-behalf-of, and the service's), never from the body."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(pattern=r"^[a-z][a-z0-9-]{0,59}$")
    subject_id: str | None = Field(default=None, pattern=SUBJECT_PATTERN)
    detail: dict[str, str | int | bool | None] = Field(default_factory=dict)


class PublishedHeadOut(BaseModel):
    """A chain head the consent worker published on Kafka."""

    seq: int
    hash: str
    at: datetime = Field(description="when the database said this was the head")


class AuditVerification(BaseModel):
    """The audit trail recomputed under the audit key and checked against every head published
    on Kafka."""

    valid: bool = Field(description="true only when the keyed chain recomputes from the first "
                                    "entry to the recorded head AND the database agrees with "
                                    "every published head; false when the heads could not be "
                                    "read (heads_checked is then null)")
    entries: int = Field(description="entries verified before the first problem")
    first_broken_seq: int | None = Field(
        description="the first entry that cannot be vouched for; null when valid, or when "
                    "only the published heads could not be read")
    problem: str | None = Field(description="what is wrong, in words; null when valid")
    heads_checked: int | None = Field(
        description="published heads compared with the database; null when Kafka could not "
                    "be read, so the result is not confirmed")
    newest_head: PublishedHeadOut | None = Field(
        description="the newest published head (entries after it are protected by the keyed "
                    "chain alone until the next head is published)")


def _verification(result: audit.Verification) -> AuditVerification:
    check, heads_problem = result.chain, result.heads_problem
    newest = check.newest_head if heads_problem is None else None
    problem = check.problem
    if heads_problem is not None:
        problem = check.problem or (f"the published audit heads could not be read "
                                    f"({heads_problem}): the chain recomputes, but cannot be "
                                    "confirmed against them; try again when Kafka answers")
    return AuditVerification(
        valid=result.valid, entries=check.entries, first_broken_seq=check.first_broken_seq,
        problem=problem, heads_checked=result.heads_checked,
        newest_head=PublishedHeadOut(seq=newest.seq, hash=newest.hash, at=newest.at)
        if newest else None)


def router(adapters: ConsentAdapters) -> APIRouter:
    """Reading, verifying and writing the audit trail."""
    routes = APIRouter()
    auth, database, trail = adapters.authorizer, adapters.database, adapters.trail
    access = SERVICE_ACCESS["audit"]

    @routes.get("/v1/audit")
    def audit_trail(caller: Annotated[Principal, Depends(auth.require("dpo"))],
                    subject_id: Annotated[str | None, Query(pattern=SUBJECT_PATTERN)]
                    = None) -> dict[str, Any]:
        """Your organisation's audit entries (reading them is itself audited)."""
        return {"entries": audit.read_trail(database, caller, subject_id, trail=trail)}

    @routes.get("/v1/audit/verify", response_model=AuditVerification, responses={200: {
        "description": "The verdict. Always 200 when the database answers: `valid` is false "
                       "with a `problem` when an entry was altered or removed, when the "
                       "database disagrees with a published head, and also when Kafka could "
                       "not be read (then `heads_checked` is null: not confirmed, never "
                       "silently valid)."}})
    def audit_verify(caller: Annotated[Principal, Depends(auth.require("dpo"))]
                     ) -> AuditVerification:
        """Recompute the keyed hash chain and check it against every head published on
        Kafka: detects any altered or removed entry, even when the chain was recomputed with
        the audit key, up to the newest published head."""
        return _verification(audit.verify(database, adapters.heads, caller, trail=trail))

    @routes.post("/internal/v1/audit", status_code=201, include_in_schema=False)
    def audit_for_service(body: AuditIn, caller: Annotated[Principal, Depends(
            auth.require_service(*access.alone | access.for_person, on_behalf=True))]
            ) -> dict[str, str]:
        try:
            with database.unit_of_work() as uow:
                audit.record_for_service(uow, caller, body.action, body.subject_id,
                                         body.detail, trail=trail)
        except ForeignAuditAction as exc:
            raise ApiError(422, "validation-failed", str(exc), field="action") from None
        return {"status": "recorded"}

    return routes
