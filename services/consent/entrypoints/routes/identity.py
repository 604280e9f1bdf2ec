"""Naming a registered person after the fact (issue 11): ``/v1/subjects/{id}/nhs-number``,
``/v1/identity-reconciliations`` for the DPO, and the safeguarding pseudonym for services."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.callers import SERVICE_ACCESS
from services.consent.entrypoints.routes._common import LIVE_SUBJECT, SUBJECT_ID, identity_errors
from services.consent.entrypoints.routes.subjects import NhsNumber, SubjectOut
from services.consent.service_layer import identity
from shared.auth import Principal
from shared.http import ApiError, errors

RECONCILIATION_ID = Path(pattern=r"^rec_[0-9a-f]{32}$",
                         description="an identity reconciliation id")


class NhsNumberIn(BaseModel):
    """An NHS number for a person registered without one."""

    model_config = ConfigDict(extra="forbid")

    nhs_number: NhsNumber = Field(
        description="10-digit NHS number with a valid Modulus 11 check digit",
        examples=["943 476 5919"])


class ReconciliationOut(BaseModel):
    """An NHS-number link waiting for your decision."""

    reconciliation_id: str
    subject_id: str
    nhs_number: str = Field(description="the number your organisation's staff gave")
    recorded_at: datetime


class ReconciliationsOut(BaseModel):
    """Your organisation's open NHS-number links, oldest first."""

    identity_reconciliations: list[ReconciliationOut]


class ResolutionIn(BaseModel):
    """The data protection officer's resolution of an NHS-number link (made once)."""

    model_config = ConfigDict(extra="forbid")

    resolution: Literal["link", "reject"] = Field(
        description="link: name the person by the number; reject: the number is not theirs")
    reason: str = Field(min_length=1, max_length=2000,
                        description="why (kept sealed under the person's key, never logged)")


class ResolutionOut(BaseModel):
    """What the resolution did."""

    reconciliation_id: str
    subject_id: str
    status: Literal["linked", "rejected", "awaiting-merge"] = Field(
        description="awaiting-merge: the number already names another subject (or this one "
                    "has another number); merging subjects is a Trust-level task, not built")


class PseudonymOut(BaseModel):
    """The keyed pseudonym that links a person's safeguarding records, for services only."""

    pseudonym: str | None = Field(description="null when the subject holds nothing to make it "
                                              "from")


def router(adapters: ConsentAdapters) -> APIRouter:
    """NHS-number links, their reconciliation, and the safeguarding pseudonym."""
    routes = APIRouter()
    auth, database, trail = adapters.authorizer, adapters.database, adapters.trail
    pseudonym_access = SERVICE_ACCESS["safeguarding-pseudonym"]

    @routes.post("/v1/subjects/{subject_id}/nhs-number", response_model=SubjectOut,
                 responses=LIVE_SUBJECT)
    def link_nhs_number(subject_id: Annotated[str, SUBJECT_ID], body: NhsNumberIn,
                        caller: Annotated[Principal, Depends(
                            auth.require("clinician", "partner-staff"))]) -> SubjectOut:
        """Link an NHS number to a person your organisation registered (or was referred)
        without one.

        Always 200 with the same body. The link waits for your data protection officer
        (`GET /v1/identity-reconciliations`); until they resolve it, registering the number
        does not find this reference. Subjects are never merged.
        """
        with identity_errors(), database.unit_of_work() as uow:
            identity.link_nhs_number(uow, adapters.keys, adapters.identifiers, subject_id,
                                     body.nhs_number, caller, trail=trail)
        return SubjectOut(subject_id=subject_id)

    @routes.get("/v1/identity-reconciliations", response_model=ReconciliationsOut)
    def reconciliations(caller: Annotated[Principal, Depends(auth.require("dpo"))]
                        ) -> ReconciliationsOut:
        """Your organisation's NHS-number links waiting for your decision, oldest first, with
        the number given (the listing is audited)."""
        with database.unit_of_work() as uow:
            rows = identity.open_reconciliations(uow, adapters.keys, caller, trail=trail)
        return ReconciliationsOut(identity_reconciliations=[ReconciliationOut(**r)
                                                            for r in rows])

    @routes.post("/v1/identity-reconciliations/{reconciliation_id}/resolve",
                 response_model=ResolutionOut, responses=errors(410, (
                     404, "No open identity reconciliation of your organisation has this id.")))
    def resolve(reconciliation_id: Annotated[str, RECONCILIATION_ID], body: ResolutionIn,
                caller: Annotated[Principal, Depends(auth.require("dpo"))]) -> ResolutionOut:
        """Resolve once one of your organisation's open NHS-number links: `link` names the
        person by the number (or, when the number names another subject, leaves it
        `awaiting-merge` for a Trust-level merge, not built), `reject` discards it."""
        try:
            with identity_errors(), database.unit_of_work() as uow:
                subject_id, status = identity.resolve_reconciliation(
                    uow, adapters.keys, adapters.identifiers, reconciliation_id,
                    body.resolution, body.reason, caller, trail=trail)
        except identity.ReconciliationNotFound:
            raise ApiError(404, "unknown-identity-reconciliation", "no open identity "
                           "reconciliation has this id", field="reconciliation_id") from None
        return ResolutionOut(reconciliation_id=reconciliation_id, subject_id=subject_id,
                             status=status)

    @routes.get("/internal/v1/subjects/{subject_id}/safeguarding-pseudonym",
                response_model=PseudonymOut, include_in_schema=False)
    def pseudonym(subject_id: Annotated[str, SUBJECT_ID],
                  caller: Annotated[Principal, Depends(
                      auth.require_service(*pseudonym_access.alone))]) -> PseudonymOut:
        with identity_errors(), database.unit_of_work() as uow:
            value = identity.safeguarding_pseudonym(uow, adapters.keys, adapters.identifiers,
                                                    subject_id, caller, trail=trail)
        return PseudonymOut(pseudonym=value)

    return routes
