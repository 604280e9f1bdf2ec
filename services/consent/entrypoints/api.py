"""The consent service's HTTP API (port 8102)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.consent.bootstrap import ConsentService
from services.consent.domain.callers import SERVICE_ACCESS
from services.consent.domain.purposes import UnknownPurpose, expand_purposes
from services.consent.service_layer import audit, consents
from services.consent.service_layer.subjects import register_subject
from shared.auth import NotPermitted, Principal
from shared.crypto import KeyShredded, UnknownSubject, b64e
from shared.events.vocabulary import ConsentMethod, Purpose
from shared.http import ApiError, create_api
from shared.identity import InvalidNhsNumber, normalise_nhs_number
from shared.settings import PlatformSettings

SUBJECT_ID = Path(pattern=r"^sub_[0-9a-f]{32}$", description="a subject reference")
WITHDRAWAL_ID = Path(pattern=r"^wd_[0-9a-f]{32}$", description="a withdrawal id")
RECORDERS = ("clinician", "partner-staff", "dpo")


class SubjectIn(BaseModel):
    """A person to register."""

    model_config = ConfigDict(extra="forbid")

    nhs_number: str = Field(description="10-digit NHS number with a valid Modulus 11 check digit",
                            examples=["943 476 5919"])

    @field_validator("nhs_number")
    @classmethod
    def _valid(cls, value: str) -> str:
        try:
            return normalise_nhs_number(value)
        except InvalidNhsNumber as exc:
            raise ValueError(str(exc)) from None


class SubjectOut(BaseModel):
    """A registered person's reference."""

    subject_id: str


class ConsentIn(BaseModel):
    """Consent to one purpose."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose = Field(description="peer-mentoring, partner-sharing or evaluation")
    method: ConsentMethod = Field(description="verbal, written or electronic")
    recorded_by: str = Field(min_length=1, max_length=200,
                             description="the member of staff who recorded it")


class WithdrawalIn(BaseModel):
    """A withdrawal: as easy as giving consent."""

    model_config = ConfigDict(extra="forbid")

    purposes: list[str] = Field(min_length=1, description='purposes, or ["all"]',
                                examples=[["peer-mentoring"], ["all"]])
    erasure: bool = Field(default=False, description="also erase the person's personal data")
    method: ConsentMethod = Field(description="verbal, written or electronic")
    recorded_by: str | None = Field(default=None, min_length=1, max_length=200,
                                    description="the member of staff who recorded it")

    @field_validator("purposes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        try:
            expand_purposes(value)
        except UnknownPurpose as exc:
            raise ValueError(str(exc)) from None
        return value


class WithdrawalAccepted(BaseModel):
    """A withdrawal recorded; its cascade is under way."""

    withdrawal_id: str
    status: Literal["pending"] = "pending"


class AuditIn(BaseModel):
    """An access another service audits: who acted comes from the verified tokens (the
    person's, on-behalf-of, and the service's), never from the body."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(pattern=r"^[a-z][a-z0-9-]{0,59}$")
    subject_id: str | None = Field(default=None, pattern=r"^sub_[0-9a-f]{32}$")
    detail: dict[str, str | int | bool | None] = Field(default_factory=dict)


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
    register_access, state_access = SERVICE_ACCESS["register"], SERVICE_ACCESS["consent-state"]
    audit_access, key_access = SERVICE_ACCESS["audit"], SERVICE_ACCESS["data-key"]

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
        except consents.NotYourSubject:
            raise ApiError(403, "forbidden", "this person is not registered with your "
                           "organisation; register them first") from None
        except consents.SubjectErased:
            raise ApiError(409, "subject-erased", "this person was erased; register them "
                           "again to record anything new") from None

    @app.post("/v1/subjects", response_model=SubjectOut, status_code=201,
              responses={200: {"model": SubjectOut, "description": "already registered"}})
    def register(body: SubjectIn, response: Response,
                 caller: Annotated[Principal, Depends(
                     auth.require("clinician", "partner-staff", via=register_access.for_person,
                                  services=register_access.alone))]) -> SubjectOut:
        """Register a person by NHS number (201), or return their existing reference (200)."""
        registrar = for_trust(caller) if caller.is_service else audited_as(caller)
        with service.database.unit_of_work() as uow:
            registration = register_subject(uow, service.keys, service.lookup,
                                            body.nhs_number, registrar)
        if not registration.created:
            response.status_code = 200
        return SubjectOut(subject_id=registration.subject_id)

    @app.post("/v1/subjects/{subject_id}/consents", status_code=201)
    def grant(subject_id: Annotated[str, SUBJECT_ID], body: ConsentIn,
              caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
              ) -> dict[str, Any]:
        """Record consent to one purpose; returns the consent record."""
        with subject_errors(), service.database.unit_of_work() as uow:
            return consents.grant(uow, service.cipher, subject_id, body.purpose, body.method,
                                  body.recorded_by, caller)

    @app.get("/v1/subjects/{subject_id}/consents")
    def consent_state(subject_id: Annotated[str, SUBJECT_ID],
                      caller: Annotated[Principal, Depends(auth.require(
                          *RECORDERS, via=state_access.for_person))]
                      ) -> dict[str, Any]:
        """The current state per purpose and the history (who, when, how)."""
        with subject_errors(), service.database.unit_of_work() as uow:
            consents.require_subject(uow.session, subject_id, caller)
            return consents.consent_state(uow.session, subject_id)

    @app.post("/v1/subjects/{subject_id}/withdrawals", status_code=202,
              response_model=WithdrawalAccepted)
    def withdraw(subject_id: Annotated[str, SUBJECT_ID], body: WithdrawalIn,
                 caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                 ) -> WithdrawalAccepted:
        """Withdraw consent (and optionally erase); every service acknowledges in turn."""
        with subject_errors(), service.database.unit_of_work() as uow:
            withdrawal_id = consents.withdraw(
                uow, service.keys, subject_id, body.purposes, body.erasure, body.method, caller,
                service.settings.cascade_deadline_seconds, body.recorded_by)
        return WithdrawalAccepted(withdrawal_id=withdrawal_id)

    @app.get("/v1/withdrawals/{withdrawal_id}")
    def withdrawal(withdrawal_id: Annotated[str, WITHDRAWAL_ID],
                   caller: Annotated[Principal, Depends(auth.require(*RECORDERS))]
                   ) -> dict[str, Any]:
        """A withdrawal's status and each required service's acknowledgement."""
        with service.database.read() as session:
            try:
                view = consents.withdrawal_view(session, withdrawal_id)
                with subject_errors():
                    consents.require_subject(session, view["subject_id"], caller)
            except consents.WithdrawalNotFound:
                raise ApiError(404, "unknown-withdrawal", "no withdrawal has this id",
                               field="withdrawal_id") from None
            return view

    @app.get("/v1/withdrawals")
    def withdrawals(caller: Annotated[Principal, Depends(auth.require(*RECORDERS))],
                    status: Annotated[Literal["pending", "overdue", "complete"],
                                      Query(description="overdue: what needs a human")]
                    = "overdue") -> dict[str, Any]:
        """Withdrawals in one status; a DPO sees every organisation's, others their own."""
        with service.database.read() as session:
            rows = consents.withdrawals_with_status(session, status)
        if "dpo" not in caller.roles:
            rows = [r for r in rows if r["org"] == caller.org]
        return {"status": status, "withdrawals": rows}

    @app.get("/v1/audit")
    def audit_trail(caller: Annotated[Principal, Depends(auth.require("dpo"))],
                    subject_id: Annotated[str | None, Query(pattern=r"^sub_[0-9a-f]{32}$")]
                    = None) -> dict[str, Any]:
        """Audit entries (reading them is itself audited)."""
        with service.database.unit_of_work() as uow:
            audit.record(uow, caller, "audit-read", subject_id)
        with service.database.read() as session:
            return {"entries": audit.entries(session, subject_id)}

    @app.get("/v1/audit/verify")
    def audit_verify(caller: Annotated[Principal, Depends(auth.require("dpo"))]
                     ) -> dict[str, Any]:
        """Recompute the hash chain: detects any altered or removed entry."""
        with service.database.read() as session:
            check = audit.verify(session)
        with service.database.unit_of_work() as uow:
            audit.record(uow, caller, "audit-verified", valid=check.valid)
        return {"valid": check.valid, "entries": check.entries,
                "first_broken_seq": check.first_broken_seq, "problem": check.problem}

    @app.post("/internal/v1/audit", status_code=201, include_in_schema=False)
    def audit_for_service(body: AuditIn, caller: Annotated[Principal, Depends(
            auth.require_service(*audit_access.alone | audit_access.for_person,
                                 on_behalf=True))]) -> dict[str, str]:
        if caller.via is None and caller.service not in audit_access.alone:
            raise NotPermitted(f"the {caller.service} service may not audit on its own")
        if caller.via is not None and caller.via not in audit_access.for_person:
            raise NotPermitted(f"the {caller.via} service may not audit for a person")
        with service.database.unit_of_work() as uow:
            audit.record(uow, audited_as(caller), body.action, body.subject_id, **body.detail)
        return {"status": "recorded"}

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
            audit.record(uow, caller, "data-key-served", subject_id)
        return DataKeyOut(key_id=key.key_id, key=b64e(key.material))

    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ConsentService(settings))
