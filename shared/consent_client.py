"""The consent service as other services use it (role service): data keys, registering
people by NHS number, and the central audit trail."""

from __future__ import annotations

import time
from typing import Any

import httpx

from shared.auth import Principal, TokenAuthority
from shared.crypto import DataKey, KeyShredded, KeyStoreUnavailable, UnknownSubject, b64d

SERVICE_ORG = "trust"


class ConsentClient:
    """A ``DataKeyStore`` that asks the consent service (wrap it in ``CachingKeyStore``), and
    the way to register people and write to the audit trail."""

    def __init__(self, base_url: str, authority: TokenAuthority, service: str,
                 timeout: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._authority = authority
        self._service = service
        self._client = httpx.Client(timeout=timeout)
        self._token: tuple[float, str] | None = None

    def _bearer(self) -> str:
        now = time.monotonic()
        if self._token is None or now - self._token[0] > 600:
            token = self._authority.mint(SERVICE_ORG, ["service"], subject=f"svc-{self._service}",
                                         lifetime_seconds=3600)
            self._token = (now, token)
        return self._token[1]

    def data_key(self, subject_id: str) -> DataKey:
        """The subject's key; 410 means shredded, 404 unknown, anything else unavailable."""
        try:
            response = self._client.get(
                f"{self._base}/internal/v1/data-keys/{subject_id}",
                headers={"Authorization": f"Bearer {self._bearer()}"})
        except httpx.HTTPError as exc:
            raise KeyStoreUnavailable("the consent service did not answer") from exc
        if response.status_code == 410:
            raise KeyShredded()
        if response.status_code == 404:
            raise UnknownSubject()
        if response.status_code != 200:
            raise KeyStoreUnavailable(f"the consent service answered {response.status_code}")
        body = response.json()
        return DataKey(key_id=body["key_id"], material=b64d(body["key"]))

    def register(self, nhs_number: str) -> str:
        """Register (or look up) a person by NHS number; returns their subject reference."""
        try:
            response = self._client.post(
                f"{self._base}/v1/subjects", json={"nhs_number": nhs_number},
                headers={"Authorization": f"Bearer {self._bearer()}"})
        except httpx.HTTPError as exc:
            raise KeyStoreUnavailable("the consent service did not answer") from exc
        if response.status_code not in (200, 201):
            raise KeyStoreUnavailable(f"the consent service answered {response.status_code}")
        return str(response.json()["subject_id"])

    def audit(self, action: str, subject_id: str | None, caller: Principal,
              **detail: Any) -> None:
        """Append to the central audit trail on behalf of ``caller``; raises if it cannot."""
        try:
            response = self._client.post(
                f"{self._base}/internal/v1/audit",
                json={"action": action, "subject_id": subject_id, "actor": caller.subject,
                      "actor_org": caller.org, "detail": detail},
                headers={"Authorization": f"Bearer {self._bearer()}"})
        except httpx.HTTPError as exc:
            raise KeyStoreUnavailable("the consent service did not answer") from exc
        if response.status_code != 201:
            raise KeyStoreUnavailable(f"the audit trail answered {response.status_code}")
