"""``/v1/subjects/{id}/consents``: an organisation's consents per purpose, and one holder's
for the services deciding what they may do for it."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.callers import SERVICE_ACCESS
from services.consent.domain.purposes import InvalidRecipients, PurposeNotOffered
from services.consent.entrypoints.routes._common import (
    LIVE_SUBJECT,
    RECORDERS,
    SUBJECT,
    SUBJECT_ID,
    consent_subject_errors,
)
from services.consent.service_layer import consents
from shared.auth import Principal
from shared.events.vocabulary import ConsentMethod, OrgId, OrgIds, Purpose
from shared.http import ApiError


class ConsentIn(BaseModel):
    """Consent to one purpose."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose = Field(description="one of the purposes the deployment offers "
                             "(PEERLINK_CONSENT_PURPOSES): peer-mentoring, partner-sharing, "
                             "evaluation, research")
    method: ConsentMethod = Field(description="verbal, written or electronic")
    recorded_by: str = Field(min_length=1, max_length=200,
                             description="the member of staff who recorded it")
    recipients: OrgIds = Field(
        default=(), description="partner-sharing only, and required for it: the DVA partner "
                                "organisations your organisation's records may be shared with",
        examples=[["partner-a"]])


def router(adapters: ConsentAdapters) -> APIRouter:
    """Granting and reading consents."""
    routes = APIRouter()
    auth, database = adapters.authorizer, adapters.database
    holder_access = SERVICE_ACCESS["holder-consents"]

    @routes.post("/v1/subjects/{subject_id}/consents", status_code=201, responses=LIVE_SUBJECT)
    def grant(subject_id: Annotated[str, SUBJECT_ID], body: ConsentIn,
              caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
              ) -> dict[str, Any]:
        """Record consent to one purpose for your organisation's records; returns the record."""
        try:
            with consent_subject_errors(), database.unit_of_work() as uow:
                return consents.grant(uow, adapters.cipher, subject_id, body.purpose,
                                      body.method, body.recorded_by, caller, body.recipients,
                                      partners=adapters.organisations.partners,
                                      trail=adapters.trail, offered=adapters.purposes)
        except PurposeNotOffered as exc:
            raise ApiError(422, "validation-failed", str(exc), field="purpose") from None
        except InvalidRecipients as exc:
            raise ApiError(422, "validation-failed", str(exc), field="recipients") from None

    @routes.get("/v1/subjects/{subject_id}/consents", responses=SUBJECT)
    def consent_state(subject_id: Annotated[str, SUBJECT_ID],
                      caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                      ) -> dict[str, Any]:
        """Your organisation's consents: state per purpose, sharing recipients, history."""
        with consent_subject_errors(), database.unit_of_work() as uow:
            return consents.own_consents(uow.session, subject_id, caller)

    @routes.get("/internal/v1/subjects/{subject_id}/consents", include_in_schema=False)
    def holder_consents(subject_id: Annotated[str, SUBJECT_ID],
                        org: Annotated[OrgId, Query(description="the holder organisation")],
                        caller: Annotated[Principal, Depends(
                            auth.require_service(*holder_access.alone))]
                        ) -> dict[str, Any]:
        """One holder organisation's consents, and whether it has a relationship with the
        person, for a service deciding what it may do for that organisation."""
        with consent_subject_errors(), database.read() as session:
            return consents.holder_consents(session, subject_id, org, caller)

    return routes
