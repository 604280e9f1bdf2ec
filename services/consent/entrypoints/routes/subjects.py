"""``/v1/subjects``: registering a person; ``/internal/v1/registrations``: the same for a
service, with the person's data key."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.consent.bootstrap import ConsentAdapters
from services.consent.domain.callers import (
    REGISTERING_ROLES,
    SERVICE_ACCESS,
    keyed_registrar,
    registrar,
)
from services.consent.domain.subjects import LOCAL_ID_PATTERN
from services.consent.service_layer.subjects import register_keyed, register_subject
from shared.auth import Principal
from shared.crypto import KeyShredded, b64e
from shared.http import ApiError
from shared.identity import InvalidNhsNumber, normalise_nhs_number


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


class KeyedRegistrationIn(BaseModel):
    """A person a service registers by NHS number (``POST /v1/subjects``'s rules)."""

    model_config = ConfigDict(extra="forbid")

    nhs_number: NhsNumber = Field(
        description="10-digit NHS number with a valid Modulus 11 check digit")


class KeyedRegistrationOut(BaseModel):
    """The person's reference and data key, for a service that seals their fields."""

    subject_id: str
    key_id: str
    key: str


def router(adapters: ConsentAdapters) -> APIRouter:
    """Registering people."""
    routes = APIRouter()
    access, keyed = SERVICE_ACCESS["register"], SERVICE_ACCESS["register-keyed"]

    @routes.post("/v1/subjects", response_model=SubjectOut, status_code=201)
    def register(body: SubjectIn, caller: Annotated[Principal, Depends(
            adapters.authorizer.require(*REGISTERING_ROLES, via=access.for_person,
                                        services=access.alone))]) -> SubjectOut:
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
        by = registrar(caller, adapters.organisations)
        with adapters.database.unit_of_work() as uow:
            registration = register_subject(
                uow, adapters.keys, adapters.identifiers, by,
                nhs_number=body.nhs_number, local_id=body.local_id, trail=adapters.trail)
        return SubjectOut(subject_id=registration.subject_id)

    @routes.post("/internal/v1/registrations", response_model=KeyedRegistrationOut,
                 status_code=201, include_in_schema=False)
    def register_with_key(body: KeyedRegistrationIn, caller: Annotated[
            Principal, Depends(adapters.authorizer.require_service(
                *keyed.alone | keyed.for_person, on_behalf=True))]) -> KeyedRegistrationOut:
        """Register a person as ``POST /v1/subjects`` does, and answer with their data key
        too (audited as served): the one round trip a service recording about a person by
        NHS number makes to consent."""
        by = keyed_registrar(caller, adapters.organisations)
        try:
            with adapters.database.unit_of_work() as uow:
                subject_id, key = register_keyed(uow, adapters.keys, adapters.identifiers, by,
                                                 body.nhs_number, trail=adapters.trail)
        except KeyShredded:
            raise ApiError(409, "erased-meanwhile", "the person was erased while being "
                           "registered: nothing was recorded; register them again") from None
        return KeyedRegistrationOut(subject_id=subject_id, key_id=key.key_id,
                                    key=b64e(key.material))

    return routes
