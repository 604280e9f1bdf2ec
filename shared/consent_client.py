"""The consent service as other services use it (role service): data keys, registering
people by NHS number, and the central audit trail."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from shared.auth import Principal, TokenAuthority
from shared.crypto import DataKey, KeyShredded, KeyStoreUnavailable, UnknownSubject, b64d

SERVICE_ORG = "trust"


class SharingRequired(PermissionError):
    """The referring organisation's partner-sharing does not name the receiving one."""


@dataclass(frozen=True)
class ConsentState:
    """One holder organisation's consents for a person."""

    purposes: dict[str, str]
    sharing_recipients: frozenset[str]

    def granted(self, purpose: str) -> bool:
        """Whether the holder's consent to ``purpose`` is active."""
        return self.purposes.get(purpose) == "granted"


class ConsentClient:
    """A ``DataKeyStore`` that asks the consent service (wrap it in ``CachingKeyStore``), and
    the way to register people and write to the audit trail."""

    def __init__(self, base_url: str, authority: TokenAuthority, service: str,
                 timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._authority = authority
        self._service = service
        self._client = httpx.Client(timeout=timeout)
        self._tokens: dict[str, tuple[float, str]] = {}

    def _bearer(self, org: str = SERVICE_ORG) -> str:
        """A service token, acting for ``org`` (the organisation whose caller it serves)."""
        now = time.monotonic()
        cached = self._tokens.get(org)
        if cached is None or now - cached[0] > 600:
            token = self._authority.mint(org, ["service"], subject=f"svc-{self._service}",
                                         lifetime_seconds=3600)
            cached = self._tokens[org] = (now, token)
        return cached[1]

    def _call(self, method: str, path: str, expected: tuple[int, ...],
              org: str = SERVICE_ORG, json: dict[str, Any] | None = None,
              conflict: type[Exception] | None = None) -> Any:
        """One request; 404 is ``UnknownSubject``, 410 ``KeyShredded``, 409 ``conflict`` when
        given, and no answer or any other unexpected status ``KeyStoreUnavailable``. Returns
        the JSON body."""
        try:
            response = self._client.request(
                method, f"{self._base}{path}", json=json,
                headers={"Authorization": f"Bearer {self._bearer(org)}"})
        except httpx.HTTPError as exc:
            raise KeyStoreUnavailable("the consent service did not answer") from exc
        if response.status_code in expected:
            return response.json()
        if response.status_code == 410:
            raise KeyShredded()
        if response.status_code == 409 and conflict is not None:
            raise conflict()
        if response.status_code == 404:
            raise UnknownSubject()
        raise KeyStoreUnavailable(f"the consent service answered {response.status_code}")

    def data_key(self, subject_id: str) -> DataKey:
        """The subject's key; raises KeyShredded, UnknownSubject or KeyStoreUnavailable."""
        body = self._call("GET", f"/internal/v1/data-keys/{subject_id}", (200,))
        return DataKey(key_id=body["key_id"], material=b64d(body["key"]))

    def register(self, nhs_number: str, org: str = SERVICE_ORG) -> str:
        """Register (or look up) a person by NHS number for ``org``; returns their reference."""
        body = self._call("POST", "/v1/subjects", (200, 201), org,
                          json={"nhs_number": nhs_number})
        return str(body["subject_id"])

    def audit(self, action: str, subject_id: str | None, caller: Principal,
              **detail: Any) -> None:
        """Append to the central audit trail on behalf of ``caller``; raises if it cannot."""
        self._call("POST", "/internal/v1/audit", (201,), json={
            "action": action, "subject_id": subject_id, "actor": caller.subject,
            "actor_org": caller.org, "detail": detail})

    def consents(self, subject_id: str, holder_org: str) -> ConsentState:
        """The consents ``holder_org`` recorded for the person (state per purpose, and whom
        its partner-sharing names)."""
        body = self._call("GET", f"/internal/v1/subjects/{subject_id}/consents?org={holder_org}",
                          (200,))
        return ConsentState(purposes=dict(body["purposes"]),
                            sharing_recipients=frozenset(body["sharing_recipients"]))

    def establish_referral(self, subject_id: str, to_org: str, caller: Principal) -> None:
        """Give ``to_org`` a relationship with the person through a referral by ``caller``'s
        organisation; raises ``SharingRequired`` when its partner-sharing does not name it."""
        self._call("POST", f"/internal/v1/subjects/{subject_id}/relationships", (201,),
                   json={"org": to_org, "holder": caller.org}, conflict=SharingRequired)
