"""The screening service's HTTP API (port 8101).

Who may do what is decided in ``services.screening.domain.access``; this module asks it, reads
the facts it needs (the record's holder, the caller's relationship with the person, the sharing
the holders recorded) and audits every read of identifiable data, allowed or refused, through
the consent service before anything is shown.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query

from services.screening.bootstrap import ScreeningService
from services.screening.domain import access
from services.screening.service_layer import risk
from services.screening.service_layer.cascade import has_relationship, holders_sharing_with
from services.screening.service_layer.commands import (
    RecordEnquiryDue,
    RecordExternalReferral,
    RecordJudgementReferral,
    RecordRiskAssessment,
    RecordScreening,
)
from services.screening.service_layer.screenings import (
    find_screening,
    record_enquiry_due,
    record_orgs,
    record_screening,
    screening_view,
    screenings_of,
)
from shared.auth import ROLES, NotPermitted, Principal
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.db import UnitOfWork
from shared.events.consent import SafeContact
from shared.http import ApiError, create_api, erased, errors
from shared.settings import PlatformSettings

SUBJECT_ID = Path(pattern=r"^sub_[0-9a-f]{32}$", description="a subject reference")
RESULTS_READ = "screening-results-read"
RESULTS_REFUSED = "screening-results-refused"
QUEUE_ENTRY_READ = "marac-referral-read"
QUEUE_REFUSED = "marac-queue-refused"
REFERRAL_SENT = "marac-referral-sent"
SAFE_CONTACT_READ = "marac-safe-contact-read"
EXPORTED = "screening-subject-exported"
EXPORT_REFUSED = "screening-export-refused"
NOT_FOUND = "no screening with this id"
ERASED = errors(410)
"""A write about an erased person."""


def build_api(service: ScreeningService) -> FastAPI:
    """The screening API wired to its service."""
    app = create_api("screening", title="Peerlink screening service",
                     description="Routine enquiry for domestic violence and abuse (HARK and "
                                 "lifetime abuse), DASH risk checklist and MARAC referrals.",
                     readiness=[service.database.ping])
    auth = service.authorizer
    anyone = auth.require(*sorted(ROLES))

    def roles_of(action: str) -> Any:
        return auth.require(*sorted(access.RULES[action].roles))

    @contextmanager
    def consent_service_errors() -> Iterator[None]:
        try:
            yield
        except KeyShredded:
            raise erased() from None
        except KeyStoreUnavailable:
            raise ApiError(503, "consent-unavailable", "the consent service is unavailable; "
                           "nothing was recorded or shown, try again") from None

    def may_record(action: str, caller: Principal, org: str) -> None:
        if not access.may_record(action, caller.roles, caller.org, org):
            raise NotPermitted("you may record only for your own organisation")

    def refuse_role(action: str, caller: Principal, audit_action: str,
                    subject_id: str | None) -> None:
        """Refuse (and audit) a caller whose role may not attempt ``action``."""
        if not access.role_allowed(action, caller.roles):
            service.registry.audit(audit_action, subject_id, caller)
            needed = ", ".join(sorted(access.RULES[action].roles))
            raise NotPermitted(f"this action needs one of the roles: {needed}")

    def readable_orgs(uow: UnitOfWork, caller: Principal, subject_id: str,
                      holders: frozenset[str]) -> frozenset[str]:
        """Of the organisations holding records of the person, those the caller may read."""
        relationship = has_relationship(uow, subject_id, caller.org)
        shared = holders_sharing_with(uow, subject_id, caller.org)
        return frozenset(org for org in holders if access.may_read(
            caller.org, caller.roles, org, relationship=relationship, shared=org in shared))

    @app.post("/v1/enquiries/due", status_code=201, responses=ERASED)
    def enquiry_due(body: RecordEnquiryDue, caller: Annotated[
            Principal, Depends(roles_of(access.RECORD_ENQUIRY_DUE))]) -> dict[str, Any]:
        """Someone was assessed and should be asked: the denominator of coverage."""
        may_record(access.RECORD_ENQUIRY_DUE, caller, body.org)
        subject_id = resolve(service, body.nhs_number, body.subject_id, caller)
        with service.database.unit_of_work() as uow:
            enquiry_id = record_enquiry_due(uow, body, subject_id)
        return {"id": enquiry_id, "subject_id": subject_id, "org": body.org,
                "team": body.team, "due_on": body.due_on.isoformat()}

    @app.post("/v1/screenings", status_code=201, responses=ERASED)
    def post_screening(body: RecordScreening, caller: Annotated[
            Principal, Depends(roles_of(access.RECORD_SCREENING))]) -> dict[str, Any]:
        """Record a routine enquiry; returns the record with its HARK score and findings."""
        may_record(access.RECORD_SCREENING, caller, body.org)
        subject_id = resolve(service, body.nhs_number, body.subject_id, caller)
        with consent_service_errors(), service.database.unit_of_work() as uow:
            screening_id = record_screening(uow, service.cipher, body, subject_id,
                                            caller.org)
            return screening_view(find_screening(uow, screening_id), service.cipher)

    @app.get("/v1/screenings/{screening_id}", responses=errors((
        404, "No screening with this id, or one the caller may not see (the same answer).")))
    def get_screening(screening_id: Annotated[str, Path(max_length=40)],
                      caller: Annotated[Principal, Depends(anyone)]) -> dict[str, Any]:
        """One screening record: the holder's own staff, or another organisation's with a
        relationship and the holder's partner-sharing naming it. A record the caller may not
        see is a 404, exactly as one that does not exist."""
        with consent_service_errors(), service.database.unit_of_work() as uow:
            row = find_screening(uow, screening_id)
            subject_id = None if row is None else row.subject_id
            # a refusal names no person: whose screening an id is must not reach the
            # refused organisation's own audit trail either
            refuse_role(access.READ_RESULTS, caller, RESULTS_REFUSED, None)
            if row is None or subject_id is None or row.org not in readable_orgs(
                    uow, caller, subject_id, frozenset({row.org})):
                service.registry.audit(RESULTS_REFUSED, None, caller)
                raise ApiError(404, "not-found", NOT_FOUND)
            service.registry.audit(RESULTS_READ, subject_id, caller)
            return screening_view(row, service.cipher)

    @app.get("/v1/subjects/{subject_id}/results")
    def results(subject_id: Annotated[str, SUBJECT_ID],
                caller: Annotated[Principal, Depends(anyone)]) -> dict[str, Any]:
        """A person's screening and risk results that the caller may see: their own
        organisation's, and those another organisation shared with theirs. Nothing shows
        whether anyone else holds records (200, possibly empty), and the audit entry is the
        same read either way, since the caller's own DPO reads it."""
        with consent_service_errors(), service.database.unit_of_work() as uow:
            refuse_role(access.READ_RESULTS, caller, RESULTS_REFUSED, subject_id)
            holders = record_orgs(uow, subject_id)
            visible = readable_orgs(uow, caller, subject_id, holders)
            service.registry.audit(RESULTS_READ, subject_id, caller)
            return {"subject_id": subject_id,
                    "screenings": screenings_of(uow, subject_id, service.cipher, visible),
                    "risk_assessments": risk.assessments_of(uow, subject_id, service.cipher,
                                                            service.records, visible)}

    def safeguarded(subject_id: str, caller: Principal,
                    safe_contact: SafeContact | None) -> risk.Person:
        """The person with their safeguarding pseudonym; a safe contact given is recorded
        with consent first, so every holder gets it. Raises the HTTP error for an erased
        person (422) or an unavailable consent service (503)."""
        try:
            pseudonym = service.safeguarding.safeguarding_pseudonym(subject_id)
        except (UnknownSubject, KeyShredded):
            raise ApiError(422, "unknown-subject", "no registered person has this subject "
                           "reference", field="subject_id") from None
        if safe_contact is not None:
            service.safeguarding.update_safe_contact(subject_id, safe_contact, caller)
        return risk.Person(subject_id, pseudonym)

    @app.post("/v1/risk-assessments", status_code=201, responses=ERASED)
    def risk_assessment(body: RecordRiskAssessment, caller: Annotated[
            Principal, Depends(roles_of(access.RECORD_RISK_ASSESSMENT))]) -> dict[str, Any]:
        """Score a DASH checklist and apply the MARAC criteria; raises a referral at once
        (a repeat when the person had one in the 12 months before, by anyone)."""
        may_record(access.RECORD_RISK_ASSESSMENT, caller, caller.org)
        subject_id = resolve(service, body.nhs_number, body.subject_id, caller)
        with consent_service_errors():
            person = safeguarded(subject_id, caller, body.safe_contact)
            with service.database.unit_of_work() as uow:
                return risk.record_risk_assessment(
                    uow, service.cipher, service.records, body, person,
                    risk.Raised(caller.org, caller.subject),
                    service.screening.marac_escalation_incidents)

    @app.post("/v1/marac-referrals", status_code=201, responses=ERASED)
    def judgement_referral(body: RecordJudgementReferral, caller: Annotated[
            Principal, Depends(roles_of(access.RECORD_JUDGEMENT_REFERRAL))]) -> dict[str, Any]:
        """A MARAC referral on professional judgement when the DASH could not be completed,
        with the reasons, why it was not completed and any answers given."""
        may_record(access.RECORD_JUDGEMENT_REFERRAL, caller, caller.org)
        subject_id = resolve(service, body.nhs_number, body.subject_id, caller)
        with consent_service_errors():
            person = safeguarded(subject_id, caller, body.safe_contact)
            with service.database.unit_of_work() as uow:
                return risk.record_judgement_referral(
                    uow, service.records, body, person, risk.Raised(caller.org, caller.subject),
                    service.screening.marac_escalation_incidents)

    @app.post("/v1/marac-referrals/external", status_code=201, responses=ERASED)
    def external_referral(body: RecordExternalReferral, caller: Annotated[
            Principal, Depends(roles_of(access.RECORD_EXTERNAL_REFERRAL))]) -> dict[str, Any]:
        """Record a MARAC referral another agency (most often the police) made outside
        Peerlink, so that the next one within 12 months is recognised as a repeat."""
        may_record(access.RECORD_EXTERNAL_REFERRAL, caller, caller.org)
        subject_id = resolve(service, None, body.subject_id, caller)
        with consent_service_errors():
            person = safeguarded(subject_id, caller, body.safe_contact)
            with service.database.unit_of_work() as uow:
                return risk.record_external_referral(
                    uow, service.records, body, person, risk.Raised(caller.org, caller.subject))

    @app.get("/v1/marac-referrals")
    def marac_queue(caller: Annotated[Principal, Depends(anyone)],
                    status: Annotated[Literal["open", "sent"] | None, Query()] = "open",
                    flagged_for_dpo: Annotated[bool | None, Query()] = None
                    ) -> dict[str, Any]:
        """The Trust safeguarding lead's queue: every referral, whoever raised it, with its
        safe contact and the assessment behind it (answers, reasons, incidents), kept ones
        too. A clinician sees the referrals they raised, with the same details; a DPO their
        organisation's referrals flagged for them, with why each is kept, and no details (a
        partner's DPO: none). Each entry shown, and each safe contact, is audited."""
        view = access.marac_view(caller.roles)
        with consent_service_errors():
            if view is None:
                service.registry.audit(QUEUE_REFUSED, None, caller)
                raise NotPermitted("the MARAC queue belongs to the Trust's safeguarding lead")
            with service.database.unit_of_work() as uow:
                rows = risk.referrals(uow, view, caller.org, caller.subject, status,
                                      flagged_for_dpo)
                shown = [{**risk.referral_view(row),
                          **(risk.referral_details(uow, service.records, service.cipher, row)
                             if access.sees_safe_contact(view) else {})} for row in rows]
            for entry in shown:
                service.registry.audit(QUEUE_ENTRY_READ, entry["subject_id"], caller,
                                       referral_id=entry["id"])
                if entry.get("safe_contact") is not None:
                    service.registry.audit(SAFE_CONTACT_READ, entry["subject_id"], caller,
                                           referral_id=entry["id"])
        return {"referrals": shown}

    @app.get("/v1/subjects/{subject_id}/export", responses=errors((
        404, "Nothing held about this person for the caller's organisation (as for an unknown "
        "person).")))
    def export(subject_id: Annotated[str, SUBJECT_ID],
               caller: Annotated[Principal, Depends(anyone)]) -> dict[str, Any]:
        """Subject access: everything screening holds about the person for the DPO's own
        organisation (screenings with notes, risk assessments with answers, MARAC referrals
        with safe contact), opened. Needs a relationship with the person; audited."""
        with consent_service_errors(), service.database.unit_of_work() as uow:
            refuse_role(access.EXPORT_SUBJECT, caller, EXPORT_REFUSED, subject_id)
            if not access.may_export(caller.roles, relationship=has_relationship(
                    uow, subject_id, caller.org)):
                # as for an unknown person (mentoring answers the same): nothing held
                service.registry.audit(EXPORT_REFUSED, subject_id, caller)
                raise ApiError(404, "not-found", "nothing held about this person for your "
                               "organisation")
            own = frozenset({caller.org})
            exported = {
                "subject_id": subject_id, "org": caller.org,
                "screenings": screenings_of(uow, subject_id, service.cipher, own),
                "risk_assessments": risk.assessments_of(uow, subject_id, service.cipher,
                                                        service.records, own),
                "marac_referrals": risk.referrals_of(uow, service.records, service.cipher,
                                                     subject_id, caller.org)}
            service.registry.audit(EXPORTED, subject_id, caller)
            return exported

    @app.post("/v1/marac-referrals/{referral_id}/sent",
              responses=errors((404, "No MARAC referral with this id.")))
    def referral_sent(referral_id: Annotated[str, Path(max_length=40)], caller: Annotated[
            Principal, Depends(roles_of(access.MARK_REFERRAL_SENT))]) -> dict[str, Any]:
        """Record that the referral and its IDVA referral were sent (the safeguarding lead)."""
        try:
            with consent_service_errors(), service.database.unit_of_work() as uow:
                sent = risk.mark_sent(uow, referral_id)
                service.registry.audit(REFERRAL_SENT, sent["subject_id"], caller)
                return sent
        except risk.ReferralNotFound:
            raise ApiError(404, "not-found", "no MARAC referral with this id") from None

    return app


def resolve(service: ScreeningService, nhs_number: str | None, subject_id: str | None,
            caller: Principal) -> str:
    """The subject reference, or the HTTP error that explains why there is none."""
    try:
        return service.resolve_subject(nhs_number, subject_id, caller)
    except KeyShredded:
        raise erased() from None
    except UnknownSubject:
        raise ApiError(422, "unknown-subject", "no registered person has this subject reference",
                       field="subject_id") from None
    except KeyStoreUnavailable:
        raise ApiError(503, "consent-unavailable", "the consent service is unavailable; "
                       "nothing was recorded, try again") from None


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ScreeningService(settings))
