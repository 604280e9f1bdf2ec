"""Bearer-token authentication: JWTs carrying the caller's organisation and roles."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

import jwt

Role = Literal["clinician", "safeguarding-lead", "partner-staff", "mentor-coordinator",
               "ops-viewer", "dpo", "service"]
ROLES: Final[frozenset[str]] = frozenset(get_args(Role))
AUDIENCE: Final = "peerlink"
OrgKind = Literal["nhs-trust", "dva-partner"]
TRUST: Final[frozenset[str]] = frozenset({"nhs-trust"})
PARTNER: Final[frozenset[str]] = frozenset({"dva-partner"})
ANY_KIND: Final[frozenset[str]] = TRUST | PARTNER

ROLE_POLICY: Final[dict[str, frozenset[str]]] = {
    "clinician": TRUST,
    "safeguarding-lead": TRUST,
    "partner-staff": PARTNER,
    "mentor-coordinator": PARTNER,
    "dpo": ANY_KIND,
    "ops-viewer": ANY_KIND,
    "service": ANY_KIND,
}
"""Which kinds of organisation each role exists at: the Trust's clinicians and safeguarding
lead, a DVA partner's staff and mentor coordinators, a DPO and ops viewer at each (acting for
their own organisation only). A token whose role its organisation may not hold is refused."""


def role_refusal(roles: frozenset[str] | set[str], org_kind: str) -> str | None:
    """Why ``roles`` may not be held at an organisation of ``org_kind``, or None if they may."""
    refused = sorted(r for r in roles if org_kind not in ROLE_POLICY.get(r, frozenset()))
    if refused:
        return (f"the role {', '.join(refused)} does not exist at an organisation of kind "
                f"{org_kind}")
    return None


class NotAuthenticated(Exception):
    """No token, or a token that is invalid or expired (HTTP 401)."""


class NotPermitted(Exception):
    """A valid caller whose role or organisation may not do this (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user or system of one organisation, with roles."""

    subject: str
    org: str
    roles: frozenset[str]
    org_kind: str = "nhs-trust"

    def has_any(self, roles: frozenset[str]) -> bool:
        """Whether the caller holds at least one of the roles."""
        return bool(self.roles & roles)


class TokenAuthority:
    """Mints and verifies Peerlink bearer tokens (HS256)."""

    def __init__(self, secret: str, organisations: Mapping[str, str], issuer: str = "peerlink",
                 lifetime_seconds: int = 8 * 3600) -> None:
        self._secret = secret
        self._organisations = organisations
        self._issuer = issuer
        self._lifetime = lifetime_seconds

    def mint(self, org: str, roles: list[str], subject: str | None = None,
             lifetime_seconds: int | None = None) -> str:
        """A signed token for a caller of ``org`` with ``roles``."""
        if org not in self._organisations:
            raise ValueError(f"unknown organisation {org!r}; configured: "
                             f"{', '.join(sorted(self._organisations))}")
        unknown = sorted(set(roles) - ROLES)
        if not roles or unknown:
            raise ValueError(f"roles must be among {', '.join(sorted(ROLES))}")
        refusal = role_refusal(set(roles), self._organisations[org])
        if refusal:
            raise ValueError(refusal)
        now = int(time.time())
        claims = {
            "iss": self._issuer, "aud": AUDIENCE, "iat": now,
            "exp": now + (self._lifetime if lifetime_seconds is None else lifetime_seconds),
            "sub": subject or f"dev-{uuid.uuid4().hex[:8]}", "org": org, "roles": sorted(roles),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        """The caller a token names; raises ``NotAuthenticated``."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=AUDIENCE,
                                issuer=self._issuer, options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticated("the bearer token has expired") from exc
        except jwt.PyJWTError as exc:
            raise NotAuthenticated("the bearer token is not valid") from exc
        org, roles = claims.get("org"), claims.get("roles")
        if org not in self._organisations:
            raise NotAuthenticated("the bearer token names an unknown organisation")
        if not isinstance(roles, list) or not roles or not set(roles) <= ROLES:
            raise NotAuthenticated("the bearer token carries unknown roles")
        kind = self._organisations[str(org)]
        refusal = role_refusal(set(roles), kind)
        if refusal:
            raise NotAuthenticated(f"the bearer token is refused: {refusal}")
        return Principal(subject=str(claims["sub"]), org=str(org), roles=frozenset(roles),
                         org_kind=kind)
