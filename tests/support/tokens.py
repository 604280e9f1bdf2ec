"""Bearer tokens in every state the access matrix presents, from valid to refused.

Only this module knows how tokens are made and verified, so when the ``tokens`` branch lands
(ES256 signed by the issuer alone, verified from a JWKS, maximum lifetimes, service identities
by client credentials) only this module changes: mint with the development issuer, sign the
wrong-signature token with a P-256 key the JWKS does not hold (under the real ``kid``), send
services their own tokens, and set the two ``*_ENFORCED`` flags below to True.

Today (main) tokens are HS256 with the development secret and a service is a token with the
``service`` role acting for an organisation.
"""

from __future__ import annotations

import time
import uuid
from typing import Final

import jwt

from shared.auth import AUDIENCE, ROLE_POLICY
from shared.runtime import token_authority
from shared.settings import PlatformSettings

PEOPLE_ROLES: Final[tuple[str, ...]] = tuple(sorted(r for r in ROLE_POLICY if r != "service"))
"""The roles people hold (``service`` is not a person's role: services have identities)."""
SERVICES: Final[tuple[str, ...]] = ("consent", "mentoring", "reporting", "screening")
TOKEN_STATES: Final[tuple[str, ...]] = (
    "token:none", "token:expired", "token:wrong-signature", "token:over-max-lifetime",
    "token:role-not-allowed")
MAX_LIFETIME_SECONDS: Final = 12 * 3600
"""The longest lifetime a person's token may have (the ``tokens`` branch's default)."""

MAX_LIFETIME_ENFORCED: Final = False
"""Whether verification refuses a token whose lifetime is over the maximum (``tokens``)."""
SERVICE_IDENTITIES_ENFORCED: Final = False
"""Whether consent knows which service calls (``tokens``); on main any ``service`` token may
call every internal endpoint, whatever service it says it is."""


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
        self._authority = token_authority(settings)
        self._secret = settings.signing_secret()
        self._kinds = {org: o.kind for org, o in settings.organisations.items()}

    def kind(self, org: str) -> str:
        """The kind of a configured organisation."""
        return self._kinds[org]

    def person(self, org: str, *roles: str, subject: str | None = None) -> str:
        """A valid token for a person of ``org`` (the minting API's own checks apply)."""
        return self._authority.mint(org, list(roles), subject=subject)

    def service(self, name: str, org: str) -> str:
        """A service's token: on main, the ``service`` role acting for ``org``."""
        return self._authority.mint(org, ["service"], subject=f"svc-{name}")

    def _crafted(self, org: str, roles: list[str], lifetime: int, *,
                 issued_ago: int = 0, secret: str | None = None) -> str:
        """A token signed below the minting API, which refuses what some states need."""
        now = int(time.time()) - issued_ago
        claims = {"iss": self._settings.jwt_issuer, "aud": AUDIENCE, "iat": now,
                  "exp": now + lifetime, "sub": f"matrix-{uuid.uuid4().hex[:8]}", "org": org,
                  "roles": sorted(roles), "jti": uuid.uuid4().hex}
        return jwt.encode(claims, secret or self._secret, algorithm="HS256")

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
            return self.service(caller.removeprefix("service:"), org)
        if caller == "token:none":
            return None
        if caller == "token:expired":
            return self._crafted(org, everything, 3600, issued_ago=3600 + 120)
        if caller == "token:wrong-signature":
            return self._crafted(org, everything, 3600, secret=uuid.uuid4().hex * 2)
        if caller == "token:over-max-lifetime":
            return self._crafted(org, everything, MAX_LIFETIME_SECONDS + 3600)
        if caller == "token:role-not-allowed":
            return self._crafted(org, [*everything, refused_role(kind)], 3600)
        if caller not in PEOPLE_ROLES:
            raise ValueError(f"unknown matrix caller {caller!r}")
        if kind not in ROLE_POLICY[caller]:
            return self._crafted(org, [caller], 3600)
        return self.person(org, caller)


def pending(caller: str, expected: int) -> str | None:
    """Why a row cannot pass until the ``tokens`` branch lands, or None if it can now."""
    if caller == "token:over-max-lifetime" and not MAX_LIFETIME_ENFORCED:
        return "the maximum token lifetime is enforced by the tokens branch"
    if caller.startswith("service:") and expected == 403 and not SERVICE_IDENTITIES_ENFORCED:
        return "per-service access to internal endpoints comes with the tokens branch"
    return None
