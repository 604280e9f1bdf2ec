"""The consent service as other services use it: data keys, registering people by NHS
number, their consent state, and the central audit trail.

Every request carries the calling service's own token; a request made for a person also
carries that person's token (``Peerlink-On-Behalf-Of``), so that consent decides and audits
as that person, via this service. Worker-side requests (no person) are the service's alone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from shared.auth import ON_BEHALF_OF, NotPermitted, Principal
from shared.crypto import DataKey, KeyShredded, KeyStoreUnavailable, UnknownSubject, b64d
from shared.events.consent import SafeContact
from shared.identity import SUBJECT_PATTERN
from shared.service_tokens import ServiceTokenSource, ServiceTokenUnavailable


def _subject(subject_id: str) -> str:
    """A subject reference fit for a path: anything else names nobody (``UnknownSubject``),
    and is never sent, so no caller's input can change the consent service's URL."""
    if not re.fullmatch(SUBJECT_PATTERN, subject_id):
        raise UnknownSubject()
    return subject_id


class Registry(Protocol):
    """Registering people: what ``resolve_subject`` needs of the consent service."""

    def register_keyed(self, nhs_number: str,
                       caller: Principal | None = None) -> tuple[str, DataKey]:
        """The person's reference and data key, registering them for ``caller``'s
        organisation."""


class LiveKeys(Protocol):
    """Data keys read from the consent service now, never from a cache."""

    def live_key(self, subject_id: str) -> DataKey:
        """The subject's key; raises ``KeyShredded`` or ``UnknownSubject``."""

    def confirmed(self, subject_id: str, key: DataKey, asked_at: float) -> None:
        """Take ``key`` as the subject's, confirmed live by the consent service in answer to
        a request sent at ``asked_at`` (``time.monotonic()``)."""


def resolve_subject(registry: Registry, keys: LiveKeys, nhs_number: str | None,
                    subject_id: str | None, caller: Principal | None) -> str:
    """The subject reference for a record: registered by NHS number (for ``caller``'s
    organisation, or with no caller, by a worker, for the Trust), or checked with the consent
    service, bypassing the key cache, to exist and not be erased.

    Raises ``UnknownSubject``, ``KeyShredded`` or ``KeyStoreUnavailable``.
    """
    if nhs_number is not None:
        asked_at = time.monotonic()  # the key's age counts from the asking, not the answer
        registered, key = registry.register_keyed(nhs_number, caller)
        keys.confirmed(registered, key, asked_at)  # the registration's answer serves its seals
        return registered
    if subject_id is None:
        raise UnknownSubject()
    keys.live_key(subject_id)  # never the cache: an erasure stops writes at once
    return subject_id


class SharingRequired(PermissionError):
    """The referring organisation's partner-sharing does not name the receiving one."""


@dataclass(frozen=True)
class ConsentState:
    """One holder organisation's consents for a person."""

    relationship: bool
    purposes: dict[str, str]
    sharing_recipients: frozenset[str]

    def granted(self, purpose: str) -> bool:
        """Whether the holder's consent to ``purpose`` is active."""
        return self.purposes.get(purpose) == "granted"


class ConsentClient:
    """A ``DataKeyStore`` that asks the consent service (wrap it in ``CachingKeyStore``), and
    the way to register people, read their consent state and write to the audit trail."""

    def __init__(self, base_url: str, tokens: ServiceTokenSource,
                 timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._tokens = tokens
        self._client = httpx.Client(timeout=timeout)

    def _headers(self, caller: Principal | None) -> dict[str, str]:
        try:
            headers = {"Authorization": f"Bearer {self._tokens.token()}"}
        except ServiceTokenUnavailable as exc:
            raise KeyStoreUnavailable("no service token for the consent service") from exc
        if caller is not None:
            if caller.is_service:
                return headers
            if caller.token is None:
                raise ValueError("acting on behalf of a person needs the token they "
                                 "presented (Principal.token)")
            headers[ON_BEHALF_OF] = caller.token
        return headers

    def _call(self, method: str, path: str, expected: tuple[int, ...],
              caller: Principal | None = None, json: dict[str, Any] | None = None,
              conflict: type[Exception] | None = None,
              params: dict[str, str] | None = None) -> Any:
        """One request; 404 is ``UnknownSubject``, 410 ``KeyShredded``, 409 ``conflict`` when
        given, 403 for a person ``NotPermitted``, and no answer or any other unexpected status
        ``KeyStoreUnavailable``. Returns the JSON body."""
        headers = self._headers(caller)
        try:
            response = self._client.request(method, f"{self._base}{path}", json=json,
                                            headers=headers, params=params)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise KeyStoreUnavailable("the consent service did not answer") from exc
        if response.status_code in expected:
            return response.json()
        if response.status_code == 410:
            raise KeyShredded()
        if response.status_code == 409 and conflict is not None:
            raise conflict()
        if response.status_code == 404:
            raise UnknownSubject()
        if response.status_code == 403 and caller is not None and not caller.is_service:
            raise NotPermitted("the consent service refused this for your organisation")
        raise KeyStoreUnavailable(f"the consent service answered {response.status_code}")

    def data_key(self, subject_id: str) -> DataKey:
        """The subject's key; raises KeyShredded, UnknownSubject or KeyStoreUnavailable."""
        body = self._call("GET", f"/internal/v1/data-keys/{_subject(subject_id)}", (200,))
        return DataKey(key_id=body["key_id"], material=b64d(body["key"]))

    def register_keyed(self, nhs_number: str,
                       caller: Principal | None = None) -> tuple[str, DataKey]:
        """Register (or look up) a person by NHS number for ``caller``'s organisation, or, with
        no caller (a worker adopting the Trust's records), for the Trust: their reference and
        data key, in one request (``KeyShredded`` if they were erased meanwhile)."""
        body = self._call("POST", "/internal/v1/registrations", (201,), caller,
                          json={"nhs_number": nhs_number}, conflict=KeyShredded)
        return str(body["subject_id"]), DataKey(key_id=body["key_id"],
                                                material=b64d(body["key"]))

    def audit(self, action: str, subject_id: str | None, caller: Principal | None,
              **detail: Any) -> None:
        """Append to the central audit trail as ``caller`` (via this service), or as this
        service alone when there is no caller; raises if it cannot."""
        self._call("POST", "/internal/v1/audit", (201,), caller, json={
            "action": action, "subject_id": subject_id, "detail": detail})

    def consents(self, subject_id: str, holder_org: str) -> ConsentState:
        """The consents ``holder_org`` recorded for the person (state per purpose, and whom
        its partner-sharing names), and whether it has a relationship with them."""
        body = self._call("GET", f"/internal/v1/subjects/{_subject(subject_id)}/consents",
                          (200,), params={"org": holder_org})
        return ConsentState(relationship=bool(body["relationship"]),
                            purposes=dict(body["purposes"]),
                            sharing_recipients=frozenset(body["sharing_recipients"]))

    def establish_referral(self, subject_id: str, to_org: str, caller: Principal) -> None:
        """Give ``to_org`` a relationship with the person through a referral by ``caller`` (on
        their behalf: their organisation is the holder); raises ``SharingRequired`` when its
        partner-sharing does not name ``to_org``."""
        self._call("POST", f"/internal/v1/subjects/{_subject(subject_id)}/relationships",
                   (201,), caller, json={"org": to_org}, conflict=SharingRequired)

    def safeguarding_pseudonym(self, subject_id: str) -> str | None:
        """The keyed pseudonym that links the person's safeguarding records across
        re-registration (HMAC of the NHS number, or of the registering organisation's local
        identifier, under the safeguarding key); None when it cannot be made. Raises
        ``KeyShredded`` for an erased person."""
        body = self._call(
            "GET", f"/internal/v1/subjects/{_subject(subject_id)}/safeguarding-pseudonym",
            (200,))
        pseudonym = body.get("pseudonym")
        return None if pseudonym is None else str(pseudonym)

    def update_safe_contact(self, subject_id: str, contact: SafeContact,
                            caller: Principal) -> None:
        """Record the person's current safe-contact instructions for ``caller`` (on their
        behalf); consent publishes ``safe-contact-updated`` to every holder."""
        self._call("PUT", f"/internal/v1/subjects/{_subject(subject_id)}/safe-contact",
                   (200,), caller, json=contact.model_dump())
