"""``/v1/referrals``: referrals to a DVA partner's intake, seen by the referrer (status) and
the receiver (with safe contact, for its coordinators), matched by the receiver, and their
safe contact updated by the staff of either end."""

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.errors import REFERRAL, errors
from services.mentoring.entrypoints.routes import ID
from services.mentoring.service_layer import mentoring
from services.mentoring.service_layer.commands import ReferMentee
from shared.auth import Principal
from shared.events.consent import SafeContact
from shared.http import errors as error_statuses

REFERRERS = ("clinician", "partner-staff")
RECORDERS = ("mentor-coordinator", "partner-staff")
INTAKE = Literal["referred", "waitlisted", "matched"]


def router(adapters: MentoringAdapters) -> APIRouter:
    """The referrals routes wired to the adapters."""
    routes = APIRouter()
    either_end = Depends(adapters.authorizer.require(*REFERRERS, "mentor-coordinator"))

    @routes.post("/v1/referrals", status_code=201, responses=error_statuses(410, (
        409, "The referrer's peer-mentoring consent is not active, or its partner-sharing does "
        "not name the receiving organisation.")))
    def refer(body: ReferMentee, caller: Annotated[
            Principal, Depends(adapters.authorizer.require(*REFERRERS))]) -> dict[str, Any]:
        """Refer a person to a DVA partner's intake; needs the referrer's peer-mentoring
        consent and, to another organisation, the referrer's partner-sharing naming it."""
        with errors():
            return mentoring.refer(adapters.database, adapters.consent, adapters.keys,
                                   adapters.cipher, adapters.records, adapters.partners, body,
                                   caller, date.today())

    @routes.get("/v1/referrals")
    def intake(caller: Annotated[Principal, Depends(adapters.authorizer.require(*RECORDERS))],
               status: Annotated[INTAKE, Query(description="referred (new), waitlisted or "
                                                         "matched")] = "referred"
               ) -> dict[str, Any]:
        """The caller's organisation's intake: referrals sent to it, oldest first, without
        safe contact (it is shown on the referral itself, to coordinators)."""
        with errors(), adapters.database.read() as session:
            views = mentoring.intake(session, adapters.consent, adapters.cipher,
                                     adapters.records, caller, status)
        return {"status": status, "referrals": views}

    @routes.get("/v1/referrals/{referral_id}", responses=error_statuses(REFERRAL))
    def get_referral(referral_id: Annotated[str, ID],
                     caller: Annotated[Principal, either_end]) -> dict[str, Any]:
        """A referral: to the referrer (status and preferences) and to the receiving
        organisation (with safe contact for its coordinators)."""
        with errors(), adapters.database.read() as session:
            return mentoring.read_referral(session, adapters.consent, adapters.cipher,
                                           adapters.records, referral_id, caller)

    @routes.post("/v1/referrals/{referral_id}/match", responses=error_statuses(REFERRAL, (
        409, "The referral is no longer waiting to be matched.")))
    def match(referral_id: Annotated[str, ID],
              caller: Annotated[Principal, either_end]) -> dict[str, Any]:
        """Match with the receiving organisation's best matchable mentor, or waitlist naming
        the unmet constraints; the receiving organisation's coordinators only."""
        with errors(), adapters.database.unit_of_work() as uow:
            return mentoring.match_referral(uow, referral_id, caller, date.today(),
                                            adapters.rules)

    @routes.put("/v1/referrals/{referral_id}/safe-contact", responses=error_statuses(
        REFERRAL, 410, (409, "The person was erased: their safe contact no longer changes.")))
    def update_safe_contact(referral_id: Annotated[str, ID], body: SafeContact,
                            caller: Annotated[Principal, either_end]) -> dict[str, Any]:
        """Replace the caller's organisation's copy of the person's safe contact (staff of the
        referral's either end): recorded with consent, which tells mentoring (and every
        holder) of that organisation's copy, and on this referral at once."""
        with errors():
            return mentoring.update_safe_contact(adapters.database, adapters.consent,
                                                 adapters.records, referral_id, body, caller)

    return routes
