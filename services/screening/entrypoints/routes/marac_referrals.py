"""``/v1/marac-referrals``: MARAC referrals on professional judgement or made by another
agency, the safeguarding lead's queue, and marking a referral sent."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from services.screening.bootstrap import ScreeningAdapters
from services.screening.domain import access
from services.screening.entrypoints.routes import ERASED, ID, anyone, roles_of
from services.screening.service_layer import risk
from services.screening.service_layer.commands import (
    RecordExternalReferral,
    RecordJudgementReferral,
)
from shared.auth import Principal
from shared.http import errors, subject_errors


def router(adapters: ScreeningAdapters) -> APIRouter:
    """The MARAC referral routes wired to the adapters."""
    routes = APIRouter()
    a = adapters

    @routes.post("/v1/marac-referrals", status_code=201, responses=ERASED)
    def judgement_referral(body: RecordJudgementReferral, caller: Annotated[
            Principal, Depends(roles_of(a.authorizer, access.RECORD_JUDGEMENT_REFERRAL))]
                           ) -> dict[str, Any]:
        """A MARAC referral on professional judgement when the DASH could not be completed,
        with the reasons, why it was not completed and any answers given."""
        with subject_errors():
            return risk.record_judgement_referral(
                caller, body, database=a.database, records=a.records, registry=a.registry,
                keys=a.keys, safeguarding=a.safeguarding,
                escalation_incidents=a.thresholds.marac_escalation_incidents)

    @routes.post("/v1/marac-referrals/external", status_code=201, responses=ERASED)
    def external_referral(body: RecordExternalReferral, caller: Annotated[
            Principal, Depends(roles_of(a.authorizer, access.RECORD_EXTERNAL_REFERRAL))]
                          ) -> dict[str, Any]:
        """Record a MARAC referral another agency (most often the police) made outside
        Peerlink, so that the next one within 12 months is recognised as a repeat."""
        with subject_errors():
            return risk.record_external_referral(
                caller, body, database=a.database, records=a.records, registry=a.registry,
                keys=a.keys, safeguarding=a.safeguarding)

    @routes.get("/v1/marac-referrals")
    def marac_queue(caller: Annotated[Principal, Depends(anyone(a.authorizer))],
                    status: Annotated[Literal["open", "sent"] | None, Query()] = "open",
                    flagged_for_dpo: Annotated[bool | None, Query()] = None
                    ) -> dict[str, Any]:
        """The Trust safeguarding lead's queue: every referral, whoever raised it, with its
        safe contact and the assessment behind it (answers, reasons, incidents), kept ones
        too. A clinician sees the referrals they raised, with the same details; a DPO their
        organisation's referrals flagged for them, with why each is kept, and no details (a
        partner's DPO: none). Each entry shown, and each safe contact, is audited."""
        with subject_errors():
            return {"referrals": risk.marac_queue(
                caller, status, flagged_for_dpo, database=a.database, cipher=a.cipher,
                records=a.records, audit=a.registry)}

    @routes.post("/v1/marac-referrals/{referral_id}/sent",
                 responses=errors((404, "No MARAC referral with this id.")))
    def referral_sent(referral_id: Annotated[str, ID], caller: Annotated[
            Principal, Depends(roles_of(a.authorizer, access.MARK_REFERRAL_SENT))]
                      ) -> dict[str, Any]:
        """Record that the referral and its IDVA referral were sent (the safeguarding lead)."""
        with subject_errors():
            return risk.mark_sent(caller, referral_id, database=a.database, audit=a.registry)

    return routes
