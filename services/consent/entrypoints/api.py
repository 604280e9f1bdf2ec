"""The consent service's HTTP API (port 8102)."""


from typing import Annotated

from fastapi import Depends, FastAPI, Path, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.consent.bootstrap import ConsentService
from services.consent.service_layer.subjects import register_subject
from shared.auth import Principal
from shared.crypto import KeyShredded, UnknownSubject, b64e
from shared.http import ApiError, create_api
from shared.identity import InvalidNhsNumber, normalise_nhs_number
from shared.settings import PlatformSettings

SUBJECT_ID = Path(pattern=r"^sub_[0-9a-f]{32}$", description="a subject reference")


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


class DataKeyOut(BaseModel):
    """A subject's data key, for services (role service) only."""

    key_id: str
    key: str


def build_api(service: ConsentService) -> FastAPI:
    """The consent API wired to its service."""
    app = create_api("consent", title="Peerlink consent service",
                     description="Subjects, consents per purpose, withdrawals and erasure.",
                     readiness=[service.database.ping])
    auth = service.authorizer

    @app.post("/v1/subjects", response_model=SubjectOut, status_code=201,
              responses={200: {"model": SubjectOut, "description": "already registered"}})
    def register(body: SubjectIn, response: Response,
                 caller: Annotated[Principal, Depends(
                     auth.require("clinician", "partner-staff", "service"))]) -> SubjectOut:
        """Register a person by NHS number (201), or return their existing reference (200)."""
        with service.database.unit_of_work() as uow:
            registration = register_subject(uow, service.keys, service.lookup,
                                            body.nhs_number, caller.org)
        if not registration.created:
            response.status_code = 200
        return SubjectOut(subject_id=registration.subject_id)

    @app.get("/internal/v1/data-keys/{subject_id}", response_model=DataKeyOut,
             include_in_schema=False)
    def data_key(subject_id: Annotated[str, SUBJECT_ID],
                 _caller: Annotated[Principal, Depends(auth.require("service"))]) -> DataKeyOut:
        try:
            key = service.keys.data_key(subject_id)
        except KeyShredded:
            raise ApiError(410, "key-shredded", "this subject was erased") from None
        except UnknownSubject:
            raise ApiError(404, "unknown-subject", "no subject has this reference",
                           field="subject_id") from None
        return DataKeyOut(key_id=key.key_id, key=b64e(key.material))

    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ConsentService(settings))
