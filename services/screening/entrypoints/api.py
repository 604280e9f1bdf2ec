"""The screening service's HTTP API (port 8101)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query

from services.screening.bootstrap import ScreeningService
from services.screening.service_layer import risk
from services.screening.service_layer.cascade import partner_may_read
from services.screening.service_layer.commands import (
    RecordEnquiryDue,
    RecordRiskAssessment,
    RecordScreening,
)
from services.screening.service_layer.screenings import (
    find_screening,
    record_enquiry_due,
    record_screening,
    screening_view,
    screenings_of,
)
from shared.auth import NotPermitted, Principal
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.db import UnitOfWork
from shared.http import ApiError, create_api
from shared.settings import PlatformSettings

SUBJECT_ID = Path(pattern=r"^sub_[0-9a-f]{32}$", description="a subject reference")
NOT_CONSENTED = ("sharing with partner organisations is not consented for this person "
                 "(partner-sharing consent is not active)")


def build_api(service: ScreeningService) -> FastAPI:
    """The screening API wired to its service."""
    app = create_api("screening", title="Peerlink screening service",
                     description="Routine enquiry for domestic violence and abuse (HARK and "
                                 "lifetime abuse), DASH risk checklist and MARAC referrals.",
                     readiness=[service.database.ping])
    auth = service.authorizer

    @contextmanager
    def consent_service_errors() -> Iterator[None]:
        try:
            yield
        except KeyStoreUnavailable:
            raise ApiError(503, "consent-unavailable", "the consent service is unavailable; "
                           "nothing was recorded or shown, try again") from None

    def own_org(caller: Principal, org: str) -> None:
        if org != caller.org:
            raise NotPermitted("you may record only for your own organisation")

    def may_read(uow: UnitOfWork, caller: Principal, subject_id: str, org: str) -> None:
        """Clinicians read their organisation's records; partner staff only with consent.

        Every read of identifiable results, allowed or refused, goes to the audit trail.
        """
        allowed = ("clinician" in caller.roles and caller.org == org) or (
            "partner-staff" in caller.roles and partner_may_read(uow, subject_id))
        service.registry.audit("screening-results-read" if allowed
                               else "screening-results-refused", subject_id, caller)
        if not allowed:
            if "partner-staff" in caller.roles:
                raise NotPermitted(NOT_CONSENTED)
            raise NotPermitted("this record belongs to another organisation")

    @app.post("/v1/enquiries/due", status_code=201)
    def enquiry_due(body: RecordEnquiryDue, caller: Annotated[
            Principal, Depends(auth.require("clinician"))]) -> dict[str, Any]:
        """Someone was assessed and should be asked: the denominator of coverage."""
        own_org(caller, body.org)
        subject_id = resolve(service, body.nhs_number, body.subject_id, caller)
        with service.database.unit_of_work() as uow:
            enquiry_id = record_enquiry_due(uow, body, subject_id)
        return {"id": enquiry_id, "subject_id": subject_id, "org": body.org,
                "team": body.team, "due_on": body.due_on.isoformat()}

    @app.post("/v1/screenings", status_code=201)
    def post_screening(body: RecordScreening, caller: Annotated[
            Principal, Depends(auth.require("clinician"))]) -> dict[str, Any]:
        """Record a routine enquiry; returns the record with its HARK score and findings."""
        own_org(caller, body.org)
        subject_id = resolve(service, body.nhs_number, body.subject_id, caller)
        with consent_service_errors(), service.database.unit_of_work() as uow:
            screening_id = record_screening(uow, service.cipher, body, subject_id,
                                            caller.org)
            return screening_view(find_screening(uow, screening_id), service.cipher)

    @app.get("/v1/screenings/{screening_id}")
    def get_screening(screening_id: Annotated[str, Path(max_length=40)], caller: Annotated[
            Principal, Depends(auth.require("clinician", "partner-staff"))]) -> dict[str, Any]:
        """One screening record: the Trust's clinicians, or partner staff with consent."""
        with consent_service_errors(), service.database.unit_of_work() as uow:
            row = find_screening(uow, screening_id)
            if row is None or row.subject_id is None:
                raise ApiError(404, "not-found", "no screening with this id")
            may_read(uow, caller, row.subject_id, row.org)
            return screening_view(row, service.cipher)

    @app.get("/v1/subjects/{subject_id}/results")
    def results(subject_id: Annotated[str, SUBJECT_ID], caller: Annotated[
            Principal, Depends(auth.require("clinician", "partner-staff"))]) -> dict[str, Any]:
        """A person's screening and risk results (partner staff only with consent)."""
        with consent_service_errors(), service.database.unit_of_work() as uow:
            may_read(uow, caller, subject_id,
                     caller.org if is_trust(service, caller.org) else "")
            return {"subject_id": subject_id,
                    "screenings": screenings_of(uow, subject_id, service.cipher),
                    "risk_assessments": risk.assessments_of(uow, subject_id, service.cipher)}

    @app.post("/v1/risk-assessments", status_code=201)
    def risk_assessment(body: RecordRiskAssessment, caller: Annotated[
            Principal, Depends(auth.require("clinician"))]) -> dict[str, Any]:
        """Score a DASH checklist and apply the MARAC criteria; raises a referral at once."""
        subject_id = resolve(service, body.nhs_number, body.subject_id, caller)
        with consent_service_errors(), service.database.unit_of_work() as uow:
            return risk.record_risk_assessment(
                uow, service.cipher, body, subject_id, caller.org,
                service.screening.marac_escalation_incidents)

    @app.get("/v1/marac-referrals")
    def marac_queue(caller: Annotated[Principal, Depends(auth.require("clinician", "dpo"))],
                    status: Annotated[Literal["open", "sent"] | None, Query()] = "open",
                    flagged_for_dpo: Annotated[bool | None, Query()] = None
                    ) -> dict[str, Any]:
        """The Trust safeguarding lead's queue: every referral, whoever raised it."""
        if "dpo" not in caller.roles and not is_trust(service, caller.org):
            raise NotPermitted("the MARAC queue belongs to the Trust's safeguarding lead")
        with service.database.unit_of_work() as uow:
            rows = risk.referrals(uow, status, flagged_for_dpo)
        return {"referrals": rows}

    @app.post("/v1/marac-referrals/{referral_id}/sent")
    def referral_sent(referral_id: Annotated[str, Path(max_length=40)], caller: Annotated[
            Principal, Depends(auth.require("clinician"))]) -> dict[str, Any]:
        """Record that the referral and its IDVA referral were sent."""
        if not is_trust(service, caller.org):
            raise NotPermitted("the MARAC queue belongs to the Trust's safeguarding lead")
        try:
            with service.database.unit_of_work() as uow:
                return risk.mark_sent(uow, referral_id)
        except risk.ReferralNotFound:
            raise ApiError(404, "not-found", "no MARAC referral with this id") from None

    return app


def is_trust(service: ScreeningService, org: str) -> bool:
    """Whether an organisation is the NHS Trust."""
    organisation = service.settings.organisations.get(org)
    return organisation is not None and organisation.kind == "nhs-trust"


def resolve(service: ScreeningService, nhs_number: str | None, subject_id: str | None,
            caller: Principal) -> str:
    """The subject reference, or the HTTP error that explains why there is none."""
    try:
        return service.resolve_subject(nhs_number, subject_id, caller)
    except (UnknownSubject, KeyShredded):
        raise ApiError(422, "unknown-subject", "no registered person has this subject reference",
                       field="subject_id") from None
    except KeyStoreUnavailable:
        raise ApiError(503, "consent-unavailable", "the consent service is unavailable; "
                       "nothing was recorded, try again") from None


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ScreeningService(settings))
