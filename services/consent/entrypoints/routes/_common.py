"""What the consent API's routers share: path parameters, documented errors, who records, and
how the service layer's errors become HTTP answers."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from fastapi import Path
from pydantic import Field

from services.consent.domain import requests
from services.consent.service_layer import access_requests, consents, erasure, identity
from shared.http import ApiError, errors
from shared.identity import SUBJECT_PATTERN

SUBJECT_ID = Path(pattern=SUBJECT_PATTERN, description="a subject reference")
SUBJECT_REFERENCE = Field(pattern=SUBJECT_PATTERN, description="a subject reference")
RECORDERS: Final = ("clinician", "partner-staff", "dpo")
"""The people who record consents, withdrawals and requests about a person."""
UNKNOWN_SUBJECT: Final = (404, "No subject has this reference, or none your organisation "
                               "has a relationship with (the same answer).")
SUBJECT = errors(UNKNOWN_SUBJECT)
LIVE_SUBJECT = errors(UNKNOWN_SUBJECT, 410)
"""Recording about a person: unknown to the caller's organisation, or erased."""


@contextmanager
def consent_subject_errors() -> Iterator[None]:
    """A person unknown to the caller's organisation (404) or erased (410)."""
    try:
        yield
    except consents.SubjectNotFound:
        raise ApiError(404, "unknown-subject", "no subject has this reference",
                       field="subject_id") from None
    except consents.SubjectErased:
        raise ApiError(410, "erased", "this person was erased: nothing more can be "
                       "recorded about them (registering them again gives a new "
                       "reference)") from None


@contextmanager
def identity_errors() -> Iterator[None]:
    """As ``consent_subject_errors``, and a person erased before their identity was read or
    written (410)."""
    with consent_subject_errors():
        try:
            yield
        except identity.Erased:
            raise ApiError(410, "erased", "this person was erased") from None


@contextmanager
def request_errors() -> Iterator[None]:
    """An erasure or subject access request not found (404), decided, extended or completed
    already (409), or a decision or extension that breaks a rule (422)."""
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
