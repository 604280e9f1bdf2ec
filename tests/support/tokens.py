"""Bearer tokens in every state the access matrix presents, from valid to refused.

Only this module knows how tokens are made, so that the tokens branch (ES256 signed by the
issuer alone, verified from a JWKS, maximum lifetimes, service identities) changes nothing
else. It follows whichever is present:

- main: HS256 with the development secret; a service is a token with the ``service`` role
  acting for an organisation; no maximum lifetime.
- tokens (``shared.issuer`` exists): the development issuer mints people's and services' own
  tokens; crafted tokens are signed with the issuer's P-256 key under its ``kid``, and the
  wrong-signature token with a fresh P-256 key under that same ``kid`` (a key not in the JWKS).
"""

from __future__ import annotations

import importlib
import time
import uuid
from types import ModuleType
from typing import Any, Final

import jwt

from shared.auth import AUDIENCE, ROLE_POLICY
from shared.settings import PlatformSettings


def _issuer_module() -> ModuleType | None:
    try:
        return importlib.import_module("shared.issuer")
    except ModuleNotFoundError:
        return None


_ISSUER: Final = _issuer_module()
TOKENS_LANDED: Final = _ISSUER is not None
"""Whether the tokens branch is merged (the development issuer exists)."""
PEOPLE_ROLES: Final[tuple[str, ...]] = tuple(sorted(r for r in ROLE_POLICY if r != "service"))
"""The roles people hold (``service`` is not a person's role: services have identities)."""
SERVICES: Final[tuple[str, ...]] = ("consent", "mentoring", "reporting", "screening")
TOKEN_STATES: Final[tuple[str, ...]] = (
    "token:none", "token:expired", "token:wrong-signature", "token:over-max-lifetime",
    "token:role-not-allowed")
MAX_LIFETIME_SECONDS: Final = 12 * 3600
"""The longest lifetime a person's token may have (the tokens branch's default)."""

MAX_LIFETIME_ENFORCED: Final = TOKENS_LANDED
"""Whether verification refuses a token whose lifetime is over the maximum."""
SERVICE_IDENTITIES_ENFORCED: Final = TOKENS_LANDED
"""Whether consent knows which service calls; on main any ``service`` token may call every
internal endpoint, whatever service it says it is."""


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
        self._headers: dict[str, str] = {}
        if _ISSUER is not None:
            from cryptography.hazmat.primitives import serialization

            issuer = _ISSUER.development_issuer(settings)  # writes the JWKS services read
            keys_dir = settings.development_keys_dir()  # type: ignore[attr-defined,unused-ignore]
            files = _ISSUER.DevelopmentIssuerFiles(keys_dir)
            self._mint: Any = issuer.mint
            self._mint_service: Any = issuer.mint_service
            self._algorithm, self._headers = "ES256", {"kid": issuer.kid}
            self._key: Any = serialization.load_pem_private_key(
                files.signing_key.read_bytes(), password=None)
            self._wrong_key: Any = serialization.load_pem_private_key(
                importlib.import_module("shared.auth").generate_signing_key(), password=None)
        else:
            authority = importlib.import_module("shared.runtime").token_authority(settings)
            self._mint = authority.mint
            self._mint_service = None
            self._algorithm = "HS256"
            self._key = settings.signing_secret()
            self._wrong_key = uuid.uuid4().hex * 2

    def kind(self, org: str) -> str:
        """The kind of a configured organisation."""
        return self._kinds[org]

    def person(self, org: str, *roles: str, subject: str | None = None) -> str:
        """A valid token for a person of ``org`` (the minting API's own checks apply)."""
        return str(self._mint(org, list(roles), subject=subject))

    def service(self, name: str, org: str) -> str:
        """A service's own token; on main, the ``service`` role acting for ``org``."""
        if _ISSUER is not None:
            return str(self._mint_service(name))
        return str(self._mint(org, ["service"], subject=f"svc-{name}"))

    def _crafted(self, org: str, roles: list[str], lifetime: int, *,
                 issued_ago: int = 0, wrong_key: bool = False) -> str:
        """A token signed below the minting API, which refuses what some states need."""
        now = int(time.time()) - issued_ago
        claims = {"iss": self._settings.jwt_issuer, "aud": AUDIENCE, "iat": now,
                  "exp": now + lifetime, "sub": f"matrix-{uuid.uuid4().hex[:8]}", "org": org,
                  "roles": sorted(roles), "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._wrong_key if wrong_key else self._key,
                          algorithm=self._algorithm, headers=self._headers or None)

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


def pending(caller: str, expected: int) -> str | None:
    """Why a row cannot pass until the ``tokens`` branch lands, or None if it can now."""
    if caller == "token:over-max-lifetime" and not MAX_LIFETIME_ENFORCED:
        return "the maximum token lifetime is enforced by the tokens branch"
    if caller.startswith("service:") and expected == 403 and not SERVICE_IDENTITIES_ENFORCED:
        return "per-service access to internal endpoints comes with the tokens branch"
    return None
