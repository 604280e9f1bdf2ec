"""``/internal/v1/subjects/{id}/relationships``: a referral giving the receiving organisation
a relationship with the person referred."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.callers import SERVICE_ACCESS, referrer
from services.consent.entrypoints.routes._common import SUBJECT_ID, consent_subject_errors
from services.consent.service_layer import consents
from shared.auth import Principal
from shared.events.vocabulary import OrgId
from shared.http import ApiError


class ReferralRelationshipIn(BaseModel):
    """A referral from the referrer's organisation (the holder, from the referrer's verified
    token, never from the body) to a receiving organisation."""

    model_config = ConfigDict(extra="forbid")

    org: OrgId = Field(description="the organisation receiving the referral")


def router(adapters: ConsentAdapters) -> APIRouter:
    """Referral relationships."""
    routes = APIRouter()
    for_person = SERVICE_ACCESS["referral"].for_person

    @routes.post("/internal/v1/subjects/{subject_id}/relationships", status_code=201,
                 include_in_schema=False)
    def referral_relationship(subject_id: Annotated[str, SUBJECT_ID],
                              body: ReferralRelationshipIn,
                              caller: Annotated[Principal, Depends(
                                  adapters.authorizer.require_service(
                                      *for_person, on_behalf=True))]
                              ) -> dict[str, str]:
        """A referral by the person calling (on whose behalf the service acts) gives the
        receiving organisation a relationship with the person referred: the referrer's
        organisation is the holder whose partner-sharing must name the receiver."""
        by = referrer(caller)
        try:
            with consent_subject_errors(), adapters.database.unit_of_work() as uow:
                consents.establish_referral(uow, subject_id, body.org, by,
                                            partners=adapters.organisations.partners,
                                            trail=adapters.trail)
        except consents.NotAPartner:
            raise ApiError(422, "validation-failed", "the receiving organisation must be a "
                           "configured DVA partner", field="org") from None
        except consents.NoSharing:
            raise ApiError(409, "sharing-required", "partner-sharing from the referring "
                           "organisation does not name the receiving organisation",
                           field="org") from None
        return {"status": "established"}

    return routes
