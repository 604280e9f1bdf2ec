"""The consent service's HTTP API (port 8102)."""

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from services.consent.adapters.heads import HeadsUnavailable
from services.consent.bootstrap import ConsentService
from services.consent.domain import requests
from services.consent.domain.audit import ChainCheck, PublishedHead
from services.consent.domain.callers import (
    REFERRERS,
    SAFE_CONTACT_ROLES,
    SERVICE_ACCESS,
    may_audit,
)
from services.consent.domain.purposes import UnknownPurpose, expand_purposes
from services.consent.domain.requests import AccessRequestStatus, Decision, ErasureStatus
from services.consent.domain.subjects import LOCAL_ID_PATTERN
from services.consent.service_layer import (
    access_requests,
    audit,
    consents,
    erasure,
    identity,
    safe_contact,
)
from services.consent.service_layer.subjects import (
    has_relationship,
    register_subject,
)
from shared.auth import NotPermitted, Principal
from shared.crypto import KeyShredded, UnknownSubject, b64e
from shared.events.consent import SafeContact
from shared.events.vocabulary import ConsentMethod, OrgId, OrgIds, Purpose, RetainedKinds
from shared.http import ApiError, create_api, errors
from shared.identity import InvalidNhsNumber, normalise_nhs_number
from shared.settings import PlatformSettings

log = logging.getLogger(__name__)
SUBJECT_ID = Path(pattern=r"^sub_[0-9a-f]{32}$", description="a subject reference")
WITHDRAWAL_ID = Path(pattern=r"^wd_[0-9a-f]{32}$", description="a withdrawal id")
RECONCILIATION_ID = Path(pattern=r"^rec_[0-9a-f]{32}$",
                         description="an identity reconciliation id")
RECORDERS = ("clinician", "partner-staff", "dpo")
UNKNOWN_SUBJECT = (404, "No subject has this reference, or none your organisation has a "
                        "relationship with (the same answer).")
SUBJECT = errors(UNKNOWN_SUBJECT)
LIVE_SUBJECT = errors(UNKNOWN_SUBJECT, 410)
"""Recording about a person: unknown to the caller's organisation, or erased."""


def _nhs_number(value: str) -> str:
    try:
        return normalise_nhs_number(value)
    except InvalidNhsNumber as exc:
        raise ValueError(str(exc)) from None


NhsNumber = Annotated[str, AfterValidator(_nhs_number)]
"""An NHS number, normalised to its 10 digits; the message never repeats it."""


class SubjectIn(BaseModel):
    """A person to register: by NHS number, or (DVA partners' clients often have none) by
    your organisation's own client identifier; exactly one of them."""

    model_config = ConfigDict(extra="forbid")

    nhs_number: NhsNumber | None = Field(
        default=None, description="10-digit NHS number with a valid Modulus 11 check digit",
        examples=["943 476 5919"])
    local_id: str | None = Field(
        default=None, pattern=LOCAL_ID_PATTERN,
        description="your organisation's own client identifier (1 to 64 letters, digits, "
                    "'.', '_', '/' or '-'), when there is no NHS number; the same identifier "
                    "from another organisation is another person", examples=["CL-20931"])


class SubjectOut(BaseModel):
    """A registered person's reference."""

    subject_id: str


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


class PseudonymOut(BaseModel):
    """The keyed pseudonym that links a person's safeguarding records, for services only."""

    pseudonym: str | None = Field(description="null when the subject holds nothing to make it "
                                              "from")


class ConsentIn(BaseModel):
    """Consent to one purpose."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose = Field(description="peer-mentoring, partner-sharing or evaluation")
    method: ConsentMethod = Field(description="verbal, written or electronic")
    recorded_by: str = Field(min_length=1, max_length=200,
                             description="the member of staff who recorded it")
    recipients: OrgIds = Field(
        default=(), description="partner-sharing only, and required for it: the DVA partner "
                                "organisations your organisation's records may be shared with",
        examples=[["partner-a"]])


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


class AuditIn(BaseModel):
    """An access another service audits: who acted comes from the verified tokens (the
    person's, on-behalf-of, and the service's), never from the body."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(pattern=r"^[a-z][a-z0-9-]{0,59}$")
    subject_id: str | None = Field(default=None, pattern=r"^sub_[0-9a-f]{32}$")
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


def _verification(check: ChainCheck, heads_problem: str | None) -> AuditVerification:
    newest = check.newest_head
    result = AuditVerification(
        valid=check.valid, entries=check.entries, first_broken_seq=check.first_broken_seq,
        problem=check.problem, heads_checked=check.heads_checked,
        newest_head=PublishedHeadOut(seq=newest.seq, hash=newest.hash, at=newest.at)
        if newest else None)
    if heads_problem is None:
        return result
    return result.model_copy(update={
        "valid": False, "heads_checked": None, "newest_head": None,
        "problem": check.problem or f"the published audit heads could not be read "
                                    f"({heads_problem}): the chain recomputes, but cannot be "
                                    "confirmed against them; try again when Kafka answers"})


class ReferralRelationshipIn(BaseModel):
    """A referral from the referrer's organisation (the holder, from the referrer's verified
    token, never from the body) to a receiving organisation."""

    model_config = ConfigDict(extra="forbid")

    org: OrgId = Field(description="the organisation receiving the referral")


class DataKeyOut(BaseModel):
    """A subject's data key, for the services that hold people's sealed fields only."""

    key_id: str
    key: str


def build_api(service: ConsentService) -> FastAPI:
    """The consent API wired to its service."""
    app = create_api("consent", title="Peerlink consent service",
                     description="Subjects, consents per purpose, withdrawals that cascade "
                                 "through every service, erasure and the audit trail.",
                     readiness=[service.database.ping])
    auth = service.authorizer
    register_access, holder_access = SERVICE_ACCESS["register"], SERVICE_ACCESS["holder-consents"]
    audit_access, key_access = SERVICE_ACCESS["audit"], SERVICE_ACCESS["data-key"]
    referral_access = SERVICE_ACCESS["referral"]
    pseudonym_access = SERVICE_ACCESS["safeguarding-pseudonym"]
    contact_access = SERVICE_ACCESS["safe-contact"]

    def for_trust(caller: Principal) -> Principal:
        """A service registering alone does so for the Trust (the Trust's record system)."""
        trusts = [org for org, o in service.settings.organisations.items()
                  if o.kind == "nhs-trust"]
        if len(trusts) != 1:
            raise NotPermitted("a service may register alone only for the one NHS Trust")
        return Principal(subject=caller.subject, org=trusts[0], roles=frozenset(),
                         org_kind="nhs-trust", service=caller.service)

    def audited_as(caller: Principal) -> Principal:
        """Who the audit trail names: the person and organisation who acted, via the service
        (from the verified tokens), or the service acting alone."""
        if caller.via is None:
            return caller
        return Principal(subject=f"{caller.subject} (via svc-{caller.via})", org=caller.org,
                         roles=caller.roles, org_kind=caller.org_kind, via=caller.via)

    @contextmanager
    def subject_errors() -> Iterator[None]:
        try:
            yield
        except consents.SubjectNotFound:
            raise ApiError(404, "unknown-subject", "no subject has this reference",
                           field="subject_id") from None
        except consents.SubjectErased:
            raise ApiError(410, "erased", "this person was erased: nothing more can be "
                           "recorded about them (registering them again gives a new "
                           "reference)") from None

    def check_recipients(recipients: tuple[str, ...], purpose: str, caller: Principal) -> None:
        if purpose != "partner-sharing":
            if recipients:
                raise ApiError(422, "validation-failed", "recipients: only partner-sharing "
                               "names recipients", field="recipients")
            return
        if not recipients:
            raise ApiError(422, "validation-failed", "recipients: partner-sharing must "
                           "name the organisations your records may be shared with",
                           field="recipients")
        for org in recipients:
            organisation = service.settings.organisations.get(org)
            if organisation is None or organisation.kind != "dva-partner" or org == caller.org:
                raise ApiError(422, "validation-failed", "recipients: each must be another "
                               "configured DVA partner organisation", field="recipients")

    @app.post("/v1/subjects", response_model=SubjectOut, status_code=201)
    def register(body: SubjectIn, caller: Annotated[Principal, Depends(
            auth.require("clinician", "partner-staff", via=register_access.for_person,
                         services=register_access.alone))]) -> SubjectOut:
        """Register a person as your organisation's own patient or client: by NHS number, or,
        without one, by your organisation's own client identifier (`local_id`).

        Always 201 with the person's reference, whether or not anyone knew them before: a
        person has one reference across the programme (one per organisation's client
        identifier), and registering never opens another organisation's records or consents.
        A service registering alone does so for the Trust (its record system's people).
        """
        if (body.nhs_number is None) == (body.local_id is None):
            named = "local_id" if body.local_id is not None else "nhs_number"
            raise ApiError(422, "validation-failed", f"{named}: give exactly one of "
                           "nhs_number or local_id", field=named)
        registrar = for_trust(caller) if caller.is_service else audited_as(caller)
        with service.database.unit_of_work() as uow:
            registration = register_subject(
                uow, service.keys, service.identifiers, registrar,
                nhs_number=body.nhs_number, local_id=body.local_id, trail=service.trail)
        return SubjectOut(subject_id=registration.subject_id)

    # --- identity (issue 11): NHS-number link, safeguarding pseudonym, safe contact --------

    @contextmanager
    def identity_errors() -> Iterator[None]:
        with subject_errors():
            try:
                yield
            except identity.Erased:
                raise ApiError(410, "erased", "this person was erased") from None

    @app.post("/v1/subjects/{subject_id}/nhs-number", response_model=SubjectOut,
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
        with identity_errors(), service.database.unit_of_work() as uow:
            identity.link_nhs_number(uow, service.keys, service.identifiers, subject_id,
                                     body.nhs_number, caller, trail=service.trail)
        return SubjectOut(subject_id=subject_id)

    @app.get("/v1/identity-reconciliations", response_model=ReconciliationsOut)
    def reconciliations(caller: Annotated[Principal, Depends(auth.require("dpo"))]
                        ) -> ReconciliationsOut:
        """Your organisation's NHS-number links waiting for your decision, oldest first, with
        the number given (the listing is audited)."""
        with service.database.unit_of_work() as uow:
            rows = identity.open_reconciliations(uow, service.keys, caller,
                                                 trail=service.trail)
        return ReconciliationsOut(identity_reconciliations=[ReconciliationOut(**r)
                                                            for r in rows])

    @app.post("/v1/identity-reconciliations/{reconciliation_id}/resolve",
              response_model=ResolutionOut, responses=errors(410, (
                  404, "No open identity reconciliation of your organisation has this id.")))
    def resolve(reconciliation_id: Annotated[str, RECONCILIATION_ID], body: ResolutionIn,
                caller: Annotated[Principal, Depends(auth.require("dpo"))]) -> ResolutionOut:
        """Resolve once one of your organisation's open NHS-number links: `link` names the
        person by the number (or, when the number names another subject, leaves it
        `awaiting-merge` for a Trust-level merge, not built), `reject` discards it."""
        try:
            with identity_errors(), service.database.unit_of_work() as uow:
                subject_id, status = identity.resolve_reconciliation(
                    uow, service.keys, service.identifiers, reconciliation_id,
                    body.resolution, body.reason, caller, trail=service.trail)
        except identity.ReconciliationNotFound:
            raise ApiError(404, "unknown-identity-reconciliation", "no open identity "
                           "reconciliation has this id", field="reconciliation_id") from None
        return ResolutionOut(reconciliation_id=reconciliation_id, subject_id=subject_id,
                             status=status)

    @app.get("/internal/v1/subjects/{subject_id}/safeguarding-pseudonym",
             response_model=PseudonymOut, include_in_schema=False)
    def pseudonym(subject_id: Annotated[str, SUBJECT_ID],
                  caller: Annotated[Principal, Depends(
                      auth.require_service(*pseudonym_access.alone))]) -> PseudonymOut:
        with identity_errors(), service.database.unit_of_work() as uow:
            value = identity.safeguarding_pseudonym(uow, service.keys, service.identifiers,
                                                    subject_id, caller, trail=service.trail)
        return PseudonymOut(pseudonym=value)

    def contact_read(subject_id: str, caller: Principal) -> SafeContactOut:
        with identity_errors(), service.database.unit_of_work() as uow:
            record = safe_contact.read_safe_contact(uow, service.keys, subject_id, caller,
                                                    trail=service.trail)
        return SafeContactOut(subject_id=subject_id, safe_contact=record.contact,
                              updated_at=record.updated_at)

    def contact_update(subject_id: str, body: SafeContact,
                       caller: Principal) -> SafeContactUpdatedOut:
        with identity_errors(), service.database.unit_of_work() as uow:
            at = safe_contact.update_safe_contact(uow, service.keys, subject_id, body, caller,
                                                  trail=service.trail)
        return SafeContactUpdatedOut(subject_id=subject_id, updated_at=at)

    @app.get("/v1/subjects/{subject_id}/safe-contact", response_model=SafeContactOut,
             responses=LIVE_SUBJECT)
    def read_contact(subject_id: Annotated[str, SUBJECT_ID], caller: Annotated[
            Principal, Depends(auth.require(*SAFE_CONTACT_ROLES))]) -> SafeContactOut:
        """Your organisation's own record of the person's safe-contact instructions (null when
        it recorded none, whatever another organisation recorded), for staff acting on them at
        an organisation with a relationship with the person (audited)."""
        return contact_read(subject_id, caller)

    @app.put("/v1/subjects/{subject_id}/safe-contact", response_model=SafeContactUpdatedOut,
             responses=LIVE_SUBJECT)
    def update_contact(subject_id: Annotated[str, SUBJECT_ID], body: SafeContact,
                       caller: Annotated[Principal, Depends(
                           auth.require(*SAFE_CONTACT_ROLES))]) -> SafeContactUpdatedOut:
        """Record your organisation's copy of the person's safe-contact instructions (never
        another organisation's); services holding records your organisation is party to
        (referrals, safeguarding concerns) are told (`safe-contact-updated`)."""
        return contact_update(subject_id, body, caller)

    @app.put("/internal/v1/subjects/{subject_id}/safe-contact",
             response_model=SafeContactUpdatedOut, include_in_schema=False)
    def update_contact_for_person(subject_id: Annotated[str, SUBJECT_ID], body: SafeContact,
                                  caller: Annotated[Principal, Depends(auth.require_service(
                                      *contact_access.for_person, on_behalf=True))]
                                  ) -> SafeContactUpdatedOut:
        """A referral's safe contact, recorded by a service for the person making it."""
        if caller.via is None:
            raise NotPermitted("safe contact is recorded for a person: send their token "
                               "(Peerlink-On-Behalf-Of)")
        if not caller.has_any(SAFE_CONTACT_ROLES):
            needed = ", ".join(sorted(SAFE_CONTACT_ROLES))
            raise NotPermitted(f"recording safe contact needs one of the roles: {needed}")
        return contact_update(subject_id, body, audited_as(caller))

    # --- end of identity ---------------------------------------------------------------------

    @app.post("/v1/subjects/{subject_id}/consents", status_code=201, responses=LIVE_SUBJECT)
    def grant(subject_id: Annotated[str, SUBJECT_ID], body: ConsentIn,
              caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
              ) -> dict[str, Any]:
        """Record consent to one purpose for your organisation's records; returns the record."""
        check_recipients(body.recipients, body.purpose, caller)
        with subject_errors(), service.database.unit_of_work() as uow:
            return consents.grant(uow, service.cipher, subject_id, body.purpose, body.method,
                                  body.recorded_by, caller, body.recipients,
                                  trail=service.trail)

    @app.get("/v1/subjects/{subject_id}/consents", responses=SUBJECT)
    def consent_state(subject_id: Annotated[str, SUBJECT_ID],
                      caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                      ) -> dict[str, Any]:
        """Your organisation's consents: state per purpose, sharing recipients, history."""
        with subject_errors(), service.database.unit_of_work() as uow:
            consents.require_subject(uow.session, subject_id, caller)
            return consents.consent_state(uow.session, subject_id, caller.org)

    @app.post("/v1/subjects/{subject_id}/withdrawals", status_code=202,
              response_model=WithdrawalAccepted, response_model_exclude_none=True,
              responses=LIVE_SUBJECT)
    def withdraw(subject_id: Annotated[str, SUBJECT_ID], body: WithdrawalIn,
                 caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                 ) -> WithdrawalAccepted:
        """Withdraw consent at once (and, with erasure, file an erasure request for your data
        protection officer); every service acknowledges the withdrawal in turn."""
        with subject_errors(), service.database.unit_of_work() as uow:
            if body.erasure:
                filed = erasure.request_erasure(
                    uow, subject_id, body.purposes, body.method, caller,
                    service.settings.cascade_deadline_seconds, body.recorded_by,
                    body.recipients, trail=service.trail)
                return accepted(filed)
            withdrawal_id = consents.withdraw(
                uow, subject_id, body.purposes, False, body.method, caller,
                service.settings.cascade_deadline_seconds, body.recorded_by, body.recipients,
                trail=service.trail)
        return WithdrawalAccepted(withdrawal_id=withdrawal_id)

    @app.get("/v1/withdrawals/{withdrawal_id}", responses=errors((
        404, "No withdrawal your organisation recorded has this id.")))
    def withdrawal(withdrawal_id: Annotated[str, WITHDRAWAL_ID],
                   caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                   ) -> dict[str, Any]:
        """A withdrawal your organisation recorded: its status and each acknowledgement."""
        with service.database.read() as session:
            try:
                view = consents.withdrawal_view(session, withdrawal_id, caller.org)
            except consents.WithdrawalNotFound:
                raise ApiError(404, "unknown-withdrawal", "no withdrawal has this id",
                               field="withdrawal_id") from None
            return view

    @app.get("/v1/withdrawals")
    def withdrawals(caller: Annotated[Principal, Depends(auth.require(*RECORDERS))],
                    status: Annotated[Literal["pending", "overdue", "complete"],
                                      Query(description="overdue: what needs a human")]
                    = "overdue") -> dict[str, Any]:
        """Your organisation's withdrawals in one status (a DPO's too: their own only)."""
        with service.database.read() as session:
            rows = consents.withdrawals_with_status(session, status, caller.org)
        return {"status": status, "withdrawals": rows}

    add_request_endpoints(app, service, subject_errors)

    @app.get("/v1/audit")
    def audit_trail(caller: Annotated[Principal, Depends(auth.require("dpo"))],
                    subject_id: Annotated[str | None, Query(pattern=r"^sub_[0-9a-f]{32}$")]
                    = None) -> dict[str, Any]:
        """Your organisation's audit entries (reading them is itself audited)."""
        with service.database.unit_of_work() as uow:
            service.trail.record(uow, caller, "audit-read", subject_id)
        with service.database.read() as session:
            return {"entries": audit.entries(session, caller.org, subject_id)}

    @app.get("/v1/audit/verify", response_model=AuditVerification, responses={200: {
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
        heads_problem = None
        published: list[PublishedHead] = []
        try:  # heads first: each names an entry committed before the snapshot read next
            published = service.heads.read_all()
        except HeadsUnavailable as exc:
            heads_problem = str(exc)
        with service.database.read() as session:
            check = service.trail.verify(session, published)
        result = _verification(check, heads_problem)
        with service.database.unit_of_work() as uow:
            service.trail.record(uow, caller, "audit-verified", valid=result.valid,
                                 heads_checked=result.heads_checked)
        return result

    @app.post("/internal/v1/audit", status_code=201, include_in_schema=False)
    def audit_for_service(body: AuditIn, caller: Annotated[Principal, Depends(
            auth.require_service(*audit_access.alone | audit_access.for_person,
                                 on_behalf=True))]) -> dict[str, str]:
        if caller.via is None and caller.service not in audit_access.alone:
            raise NotPermitted(f"the {caller.service} service may not audit on its own")
        if caller.via is not None and caller.via not in audit_access.for_person:
            raise NotPermitted(f"the {caller.via} service may not audit for a person")
        writer = caller.via or caller.service or ""
        if not may_audit(writer, body.action):
            raise ApiError(422, "validation-failed", f"action: the {writer} service records "
                           "only its own actions", field="action")
        with service.database.unit_of_work() as uow:
            service.trail.record(uow, audited_as(caller), body.action, body.subject_id,
                                 **body.detail)
        return {"status": "recorded"}

    @app.get("/internal/v1/subjects/{subject_id}/consents", include_in_schema=False)
    def holder_consents(subject_id: Annotated[str, SUBJECT_ID],
                        org: Annotated[OrgId, Query(description="the holder organisation")],
                        caller: Annotated[Principal, Depends(
                            auth.require_service(*holder_access.alone))]
                        ) -> dict[str, Any]:
        """One holder organisation's consents, and whether it has a relationship with the
        person, for a service deciding what it may do for that organisation."""
        with subject_errors(), service.database.read() as session:
            consents.require_subject(session, subject_id, caller)
            state = consents.consent_state(session, subject_id, org)
            related = has_relationship(session, subject_id, org)
        return {"relationship": related, "purposes": state["purposes"],
                "sharing_recipients": state["sharing_recipients"]}

    @app.post("/internal/v1/subjects/{subject_id}/relationships", status_code=201,
              include_in_schema=False)
    def referral_relationship(subject_id: Annotated[str, SUBJECT_ID],
                              body: ReferralRelationshipIn,
                              caller: Annotated[Principal, Depends(auth.require_service(
                                  *referral_access.for_person, on_behalf=True))]
                              ) -> dict[str, str]:
        """A referral by the person calling (on whose behalf the service acts) gives the
        receiving organisation a relationship with the person referred: the referrer's
        organisation is the holder whose partner-sharing must name the receiver."""
        if caller.via is None:
            raise NotPermitted("a referral is made by a person: send the referrer's token "
                               "(Peerlink-On-Behalf-Of)")
        if not caller.has_any(REFERRERS):
            needed = ", ".join(sorted(REFERRERS))
            raise NotPermitted(f"making a referral needs one of the roles: {needed}")
        organisation = service.settings.organisations.get(body.org)
        if organisation is None or organisation.kind != "dva-partner":
            raise ApiError(422, "validation-failed", "the receiving organisation must be a "
                           "configured DVA partner", field="org")
        with subject_errors(), service.database.unit_of_work() as uow:
            row = consents.require_subject(uow.session, subject_id, caller)
            if row.erased_at is not None:
                raise consents.SubjectErased()
            try:
                consents.establish_referral(uow, subject_id, body.org, caller.org,
                                            audited_as(caller),
                                            trail=service.trail)
            except consents.NoSharing:
                raise ApiError(409, "sharing-required", "partner-sharing from the referring "
                               "organisation does not name the receiving organisation",
                               field="org") from None
        return {"status": "established"}

    @app.get("/internal/v1/data-keys/{subject_id}", response_model=DataKeyOut,
             include_in_schema=False)
    def data_key(subject_id: Annotated[str, SUBJECT_ID],
                 caller: Annotated[Principal, Depends(auth.require_service(*key_access.alone))]
                 ) -> DataKeyOut:
        try:
            key = service.keys.data_key(subject_id)
        except KeyShredded:
            raise ApiError(410, "key-shredded", "this subject was erased") from None
        except UnknownSubject:
            raise ApiError(404, "unknown-subject", "no subject has this reference",
                           field="subject_id") from None
        with service.database.unit_of_work() as uow:
            service.trail.record(uow, caller, "data-key-served", subject_id)
        return DataKeyOut(key_id=key.key_id, key=b64e(key.material))

    return app


# --- erasure and subject access requests (UK GDPR Art. 17 and 15) ---------------------------
#
# Filed by staff of an organisation with a relationship with the person; decided, answered and
# read by that organisation's DPO only. Another organisation's request is a 404, exactly like an
# unknown id. Every decision, extension and read is audited.

ERASURE_REQUEST_ID = Path(pattern=r"^er_[0-9a-f]{32}$", description="an erasure request id")
ACCESS_REQUEST_ID = Path(pattern=r"^sar_[0-9a-f]{32}$",
                         description="a subject access request id")
SUBJECT_REFERENCE = Field(pattern=r"^sub_[0-9a-f]{32}$", description="a subject reference")
ERASURE_REQUEST = errors((404, "No erasure request your organisation filed has this id."))
ACCESS_REQUEST = errors((404, "No subject access request your organisation filed has this id."))


class ErasureRequestIn(BaseModel):
    """A person asks to be erased: their consents are withdrawn at once and the request goes to
    the data protection officer."""

    model_config = ConfigDict(extra="forbid")

    subject_id: str = SUBJECT_REFERENCE
    method: ConsentMethod = Field(description="verbal, written or electronic")
    recorded_by: str | None = Field(default=None, min_length=1, max_length=200,
                                    description="the member of staff who recorded it")


class DecisionIn(BaseModel):
    """The data protection officer's decision on an erasure request (made once)."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision = Field(description="approve, approve-except-retained or refuse")
    reason: str | None = Field(
        default=None, min_length=1, max_length=2000,
        description="required to refuse or to approve except retained records: the person "
                    "must be told why (kept sealed, never logged)")
    retained: RetainedKinds | None = Field(
        default=None, description="approve-except-retained only, and required for it: the "
                                  "record kinds kept under another lawful basis")


class ExtensionIn(BaseModel):
    """One extension of an erasure request's deadline, by one or two further months."""

    model_config = ConfigDict(extra="forbid")

    months: Literal[1, 2] = Field(description="further months: 1 or 2")
    reason: str = Field(min_length=1, max_length=2000,
                        description="why the request needs longer (the person must be told)")


class AccessRequestIn(BaseModel):
    """A person asks for a copy of everything held about them."""

    model_config = ConfigDict(extra="forbid")

    subject_id: str = SUBJECT_REFERENCE


def add_request_endpoints(app: FastAPI, service: ConsentService,
                          subject_errors: Callable[[], AbstractContextManager[None]]) -> None:
    """The erasure and subject access request endpoints."""
    auth = service.authorizer
    dpo = Depends(auth.require("dpo"))

    @contextmanager
    def request_errors() -> Iterator[None]:
        try:
            yield
        except erasure.ErasureRequestNotFound:
            raise ApiError(404, "unknown-erasure-request", "no erasure request has this id",
                           field="erasure_request_id") from None
        except access_requests.AccessRequestNotFound:
            raise ApiError(404, "unknown-subject-access-request", "no subject access request "
                           "has this id", field="request_id") from None
        except requests.AlreadyDecided:
            raise ApiError(409, "already-decided", "this request was decided already; a "
                           "decision is made once", field="decision") from None
        except requests.AlreadyExtended:
            raise ApiError(409, "already-extended", "this request's deadline was extended "
                           "already; it may be extended once", field="months") from None
        except access_requests.AccessRequestComplete:
            raise ApiError(409, "already-complete", "this request was completed already",
                           field="request_id") from None
        except requests.RequestRuleBroken as exc:
            raise ApiError(422, "validation-failed", str(exc), field=exc.field) from None

    @app.post("/v1/erasure-requests", status_code=202, response_model=WithdrawalAccepted,
              responses=LIVE_SUBJECT)
    def file_erasure(body: ErasureRequestIn,
                     caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                     ) -> WithdrawalAccepted:
        """A person asks to be erased: every purpose is withdrawn at once (erasure implies
        withdrawal) and the request awaits your data protection officer's decision. The answer
        is the same whoever else holds the person."""
        with subject_errors(), service.database.unit_of_work() as uow:
            filed = erasure.request_erasure(
                uow, body.subject_id, ["all"], body.method, caller,
                service.settings.cascade_deadline_seconds, body.recorded_by,
                trail=service.trail)
        return accepted(filed)

    @app.get("/v1/erasure-requests")
    def erasure_requests(caller: Annotated[Principal, dpo],
                         status: Annotated[ErasureStatus, Query(
                             description="awaiting-dpo-decision: what needs your decision")]
                         = ErasureStatus.AWAITING) -> dict[str, Any]:
        """Your organisation's erasure requests in one status, the soonest due first."""
        with service.database.unit_of_work() as uow:
            rows = erasure.with_status(uow.session, service.records, caller.org, status)
            service.trail.record(uow, caller, "erasure-requests-listed", status=status.value,
                                 listed=len(rows))
        return {"status": status.value, "erasure_requests": rows}

    @app.get("/v1/erasure-requests/{erasure_request_id}", responses=ERASURE_REQUEST)
    def erasure_request(erasure_request_id: Annotated[str, ERASURE_REQUEST_ID],
                        caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """An erasure request your organisation filed: its deadline, the decision and its
        reason, what was retained and each service's acknowledgement. ``scope`` (subject or
        organisation) is shown to you alone: it says whether another organisation holds the
        person independently, which the request's filer and the person are never told."""
        with request_errors(), service.database.unit_of_work() as uow:
            view = erasure.view(uow.session, service.records, erasure_request_id, caller.org)
            service.trail.record(uow, caller, "erasure-request-read", view["subject_id"],
                                 erasure_request_id=erasure_request_id)
        return view

    @app.post("/v1/erasure-requests/{erasure_request_id}/decision", responses={
        **ERASURE_REQUEST, **errors((409, "The request was decided already."))})
    def decide(erasure_request_id: Annotated[str, ERASURE_REQUEST_ID], body: DecisionIn,
               caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """Decide once: approve (erase), approve except named record kinds, or refuse (nothing
        changes; the reason is what the person is told)."""
        with request_errors(), service.database.unit_of_work() as uow:
            decided = erasure.decide(uow, service.keys, service.records, erasure_request_id,
                                     body.decision, body.reason, body.retained, caller,
                                     trail=service.trail)
        if decided.scrub and not service.database.scrub(decided.scrub):
            log.warning("the write-ahead log could not be truncated after an erasure; the "
                        "next checkpoint removes what it holds")
        return decided.view

    @app.post("/v1/erasure-requests/{erasure_request_id}/extension", responses={
        **ERASURE_REQUEST, **errors((409, "The deadline was extended already."))})
    def extend(erasure_request_id: Annotated[str, ERASURE_REQUEST_ID], body: ExtensionIn,
               caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """Extend the deadline once, by one or two further months, saying why."""
        with request_errors(), service.database.unit_of_work() as uow:
            return erasure.extend(uow, service.records, erasure_request_id, body.months,
                                  body.reason, caller, trail=service.trail)

    @app.post("/v1/subject-access-requests", status_code=201, responses=LIVE_SUBJECT)
    def file_access_request(body: AccessRequestIn,
                            caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                            ) -> dict[str, Any]:
        """A person asks for a copy of what is held about them: due in one calendar month."""
        with subject_errors(), service.database.unit_of_work() as uow:
            return access_requests.file(uow, body.subject_id, caller, trail=service.trail)

    @app.get("/v1/subject-access-requests")
    def access_request_list(caller: Annotated[Principal, dpo],
                            status: Annotated[AccessRequestStatus, Query(
                                description="open: what needs answering")]
                            = AccessRequestStatus.OPEN) -> dict[str, Any]:
        """Your organisation's subject access requests in one status, the soonest due first."""
        with service.database.unit_of_work() as uow:
            rows = access_requests.with_status(uow.session, caller.org, status)
            service.trail.record(uow, caller, "subject-access-requests-listed",
                                 status=status.value, listed=len(rows))
        return {"status": status.value, "subject_access_requests": rows}

    @app.get("/v1/subject-access-requests/{request_id}", responses=ACCESS_REQUEST)
    def access_request(request_id: Annotated[str, ACCESS_REQUEST_ID],
                       caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """A subject access request your organisation filed."""
        with request_errors(), service.database.unit_of_work() as uow:
            view = access_requests.view(uow.session, request_id, caller.org)
            service.trail.record(uow, caller, "subject-access-request-read",
                                 view["subject_id"], request_id=request_id)
        return view

    @app.post("/v1/subject-access-requests/{request_id}/complete", responses={
        **ACCESS_REQUEST, **errors((409, "The request was completed already."))})
    def complete_access_request(request_id: Annotated[str, ACCESS_REQUEST_ID],
                                caller: Annotated[Principal, dpo]) -> dict[str, Any]:
        """Mark the request answered (``peerlink sar export`` does, once the bundle is
        written)."""
        with request_errors(), service.database.unit_of_work() as uow:
            return access_requests.complete(uow, request_id, caller, trail=service.trail)

    @app.get("/v1/subjects/{subject_id}/export", responses=SUBJECT)
    def export(subject_id: Annotated[str, SUBJECT_ID], caller: Annotated[Principal, dpo]
               ) -> dict[str, Any]:
        """Everything consent holds about the person for your organisation, opened (the NHS
        number, consents, withdrawals, requests, and who saw what)."""
        with subject_errors(), service.database.unit_of_work() as uow:
            consents.require_subject(uow.session, subject_id, caller)
            service.trail.record(uow, caller, "subject-exported", subject_id)
        with service.database.read() as session:
            return access_requests.export(session, service.keys, service.records, subject_id,
                                          caller.org)


def accepted(filed: erasure.Filed) -> WithdrawalAccepted:
    """The answer to a withdrawal filed with an erasure request."""
    return WithdrawalAccepted(withdrawal_id=filed.withdrawal_id,
                              erasure_request_id=filed.erasure_request_id,
                              erasure_request_status="awaiting-dpo-decision")

# --- end of erasure and subject access requests -----------------------------------------------


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ConsentService(settings))
