"""``/v1/subjects/{id}/safe-contact``: each organisation's copy of a person's safe-contact
instructions, and a referral's, recorded by a service for the person making it."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.callers import (
    SAFE_CONTACT_ROLES,
    SERVICE_ACCESS,
    safe_contact_recorder,
)
from services.consent.entrypoints.routes._common import LIVE_SUBJECT, SUBJECT_ID, identity_errors
from services.consent.service_layer import safe_contact
from shared.auth import Principal
from shared.events.consent import SafeContact


class SafeContactOut(BaseModel):
    """Your organisation's current safe-contact instructions for the person (null when your
    organisation recorded none; another organisation's are never shown)."""

    subject_id: str
    safe_contact: SafeContact | None
    updated_at: datetime | None


class SafeContactUpdatedOut(BaseModel):
    """Safe-contact instructions recorded; every holder is told."""

    subject_id: str
    updated_at: datetime


def router(adapters: ConsentAdapters) -> APIRouter:
    """Reading and recording safe contact."""
    routes = APIRouter()
    auth = adapters.authorizer
    for_person = SERVICE_ACCESS["safe-contact"].for_person

    def recorded(subject_id: str, body: SafeContact,
                 caller: Principal) -> SafeContactUpdatedOut:
        with identity_errors(), adapters.database.unit_of_work() as uow:
            at = safe_contact.update_safe_contact(uow, adapters.keys, subject_id, body, caller,
                                                  trail=adapters.trail)
        return SafeContactUpdatedOut(subject_id=subject_id, updated_at=at)

    @routes.get("/v1/subjects/{subject_id}/safe-contact", response_model=SafeContactOut,
                responses=LIVE_SUBJECT)
    def read_contact(subject_id: Annotated[str, SUBJECT_ID], caller: Annotated[
            Principal, Depends(auth.require(*SAFE_CONTACT_ROLES))]) -> SafeContactOut:
        """Your organisation's own record of the person's safe-contact instructions (null when
        it recorded none, whatever another organisation recorded), for staff acting on them at
        an organisation with a relationship with the person (audited)."""
        with identity_errors(), adapters.database.unit_of_work() as uow:
            record = safe_contact.read_safe_contact(uow, adapters.keys, subject_id, caller,
                                                    trail=adapters.trail)
        return SafeContactOut(subject_id=subject_id, safe_contact=record.contact,
                              updated_at=record.updated_at)

    @routes.put("/v1/subjects/{subject_id}/safe-contact", response_model=SafeContactUpdatedOut,
                responses=LIVE_SUBJECT)
    def update_contact(subject_id: Annotated[str, SUBJECT_ID], body: SafeContact,
                       caller: Annotated[Principal, Depends(
                           auth.require(*SAFE_CONTACT_ROLES))]) -> SafeContactUpdatedOut:
        """Record your organisation's copy of the person's safe-contact instructions (never
        another organisation's); services holding records your organisation is party to
        (referrals, safeguarding concerns) are told (`safe-contact-updated`)."""
        return recorded(subject_id, body, caller)

    @routes.put("/internal/v1/subjects/{subject_id}/safe-contact",
                response_model=SafeContactUpdatedOut, include_in_schema=False)
    def update_contact_for_person(subject_id: Annotated[str, SUBJECT_ID], body: SafeContact,
                                  caller: Annotated[Principal, Depends(auth.require_service(
                                      *for_person, on_behalf=True))]
                                  ) -> SafeContactUpdatedOut:
        """A referral's safe contact, recorded by a service for the person making it."""
        return recorded(subject_id, body, safe_contact_recorder(caller))

    return routes
