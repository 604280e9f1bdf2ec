"""A calling service's own tokens, from the issuer by the OAuth 2.0 client-credentials grant.

The service presents its client id and secret (read from its own secret file) and caches the
short-lived token until shortly before it expires.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import httpx


class ServiceTokenUnavailable(Exception):
    """The issuer did not give this service a token (no answer, or refused)."""


class ServiceTokenSource(Protocol):
    """Where a client gets its service token."""

    service: str

    def token(self) -> str:
        """A current service token."""
        ...


class ClientCredentials:
    """Service tokens for ``service`` from ``token_url``, cached until shortly before expiry."""

    def __init__(self, service: str, token_url: str, secret_file: Path,
                 client_id: str | None = None, timeout: float = 10.0,
                 renew_before_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.token_url = token_url
        self.secret_file = secret_file
        self.client_id = client_id or service
        self._timeout = timeout
        self._renew_before = renew_before_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def token(self) -> str:
        """The cached token, or a new one when it is about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, lifetime = self._fetch()
                self._renew_at = self._clock() + max(
                    lifetime - self._renew_before, lifetime / 2)
            return self._token

    def _fetch(self) -> tuple[str, float]:
        try:
            secret = self.secret_file.read_text().strip()
        except OSError as exc:
            raise ServiceTokenUnavailable("this service's client secret file cannot be "
                                          "read") from exc
        try:
            response = httpx.post(self.token_url, timeout=self._timeout, data={
                "grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": secret})
        except httpx.HTTPError as exc:
            raise ServiceTokenUnavailable("the token issuer did not answer") from exc
        if response.status_code != 200:
            raise ServiceTokenUnavailable(
                f"the token issuer answered {response.status_code}")
        body = response.json()
        if body.get("token_type", "").lower() != "bearer" or not body.get("access_token"):
            raise ServiceTokenUnavailable("the token issuer's answer is not a bearer token")
        return str(body["access_token"]), float(body.get("expires_in", 300))
