"""Bearer tokens in every state the access matrix presents, from valid to refused.

Only this module knows how tokens are made: the development issuer mints people's and
services' own tokens; crafted tokens are signed with the issuer's P-256 key under its ``kid``,
and the wrong-signature token with a fresh P-256 key under that same ``kid`` (a key not in the
JWKS).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization

from shared.auth import AUDIENCE, ROLE_POLICY, SIGNING_ALGORITHM, generate_signing_key
from shared.issuer import DevelopmentIssuerFiles, development_issuer
from shared.settings import PlatformSettings

PEOPLE_ROLES: Final[tuple[str, ...]] = tuple(sorted(ROLE_POLICY))
"""The roles people hold (services have identities, not roles)."""
SERVICES: Final[tuple[str, ...]] = ("consent", "mentoring", "reporting", "screening")
TOKEN_STATES: Final[tuple[str, ...]] = (
    "token:none", "token:expired", "token:wrong-signature", "token:over-max-lifetime",
    "token:role-not-allowed")
MAX_LIFETIME_SECONDS: Final = 12 * 3600
"""The longest lifetime a person's token may have (the default maximum)."""


def allowed_roles(kind: str) -> list[str]:
    """Every people role an organisation of ``kind`` may hold."""
    return [r for r in PEOPLE_ROLES if kind in ROLE_POLICY[r]]


def refused_role(kind: str) -> str:
    """A people role an organisation of ``kind`` may not hold."""
    return next(r for r in PEOPLE_ROLES if kind not in ROLE_POLICY[r])


class Tokens:
    """Makes the Authorization header for each caller of the matrix."""

    def __init__(self, settings: PlatformSettings) -> None:
        self._settings = settings
        self._kinds = {org: o.kind for org, o in settings.organisations.items()}
        issuer = development_issuer(settings)  # writes the JWKS services read
        files = DevelopmentIssuerFiles(settings.development_keys_dir())
        self._issuer = issuer
        self._headers = {"kid": issuer.kid}
        self._key: Any = serialization.load_pem_private_key(
            files.signing_key.read_bytes(), password=None)
        self._wrong_key: Any = serialization.load_pem_private_key(
            generate_signing_key(), password=None)

    def kind(self, org: str) -> str:
        """The kind of a configured organisation."""
        return self._kinds[org]

    def person(self, org: str, *roles: str, subject: str | None = None) -> str:
        """A valid token for a person of ``org`` (the minting API's own checks apply)."""
        return self._issuer.mint(org, list(roles), subject=subject)

    def service(self, name: str) -> str:
        """A service's own token (no organisation, no roles)."""
        return self._issuer.mint_service(name)

    def _crafted(self, org: str, roles: list[str], lifetime: int, *,
                 issued_ago: int = 0, wrong_key: bool = False) -> str:
        """A token signed below the minting API, which refuses what some states need."""
        now = int(time.time()) - issued_ago
        claims = {"iss": self._settings.jwt_issuer, "aud": AUDIENCE, "iat": now,
                  "exp": now + lifetime, "sub": f"matrix-{uuid.uuid4().hex[:8]}", "org": org,
                  "roles": sorted(roles), "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._wrong_key if wrong_key else self._key,
                          algorithm=SIGNING_ALGORITHM, headers=self._headers)

    def headers(self, caller: str, org: str, **extra: str) -> dict[str, str]:
        """The headers for one matrix caller: a role name, ``service:<name>`` or a token
        state. A role the organisation may not hold is crafted (the minting API refuses it)."""
        token = self.token(caller, org)
        return {**extra, **({"Authorization": f"Bearer {token}"} if token else {})}

    def token(self, caller: str, org: str) -> str | None:
        """The bearer token for one matrix caller, or None for ``token:none``."""
        kind = self._kinds[org]
        everything = allowed_roles(kind)  # token states would be admitted but for the state
        if caller.startswith("service:"):
            return self.service(caller.removeprefix("service:"))
        if caller == "token:none":
            return None
        if caller == "token:expired":
            return self._crafted(org, everything, 3600, issued_ago=3600 + 120)
        if caller == "token:wrong-signature":
            return self._crafted(org, everything, 3600, wrong_key=True)
        if caller == "token:over-max-lifetime":
            return self._crafted(org, everything, MAX_LIFETIME_SECONDS + 3600)
        if caller == "token:role-not-allowed":
            return self._crafted(org, [*everything, refused_role(kind)], 3600)
        if caller not in PEOPLE_ROLES:
            raise ValueError(f"unknown matrix caller {caller!r}")
        if kind not in ROLE_POLICY[caller]:
            return self._crafted(org, [caller], 3600)
        return self.person(org, caller)

