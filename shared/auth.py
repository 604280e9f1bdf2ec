"""Bearer tokens: signed by an issuer alone (ES256), verified by every service from public keys.

People's tokens carry the caller's organisation and roles; service tokens carry the calling
service's name and no roles. Verification takes its keys from a JWKS (a file in development,
the organisation's identity provider in production), checks issuer, audience, algorithm and
maximum lifetime, and refuses a role its organisation's kind may not hold.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol, get_args

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.events.vocabulary import ServiceName

Role = Literal["clinician", "safeguarding-lead", "partner-staff", "mentor-coordinator",
               "ops-viewer", "dpo", "researcher"]
ROLES: Final[frozenset[str]] = frozenset(get_args(Role))
SERVICE_NAMES: Final[frozenset[str]] = frozenset(get_args(ServiceName))
AUDIENCE: Final = "peerlink"
ALGORITHMS: Final[tuple[str, ...]] = ("ES256", "RS256")
SIGNING_ALGORITHM: Final = "ES256"
ON_BEHALF_OF: Final = "Peerlink-On-Behalf-Of"
"""The header in which a service forwards the token of the person it acts for."""
SERVICE_ORG: Final = "peerlink-platform"
"""The ``org`` of a service acting alone: the platform itself, never a programme organisation."""
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
    "researcher": TRUST,
}
"""Which kinds of organisation each role exists at: the Trust's clinicians and safeguarding
lead, a DVA partner's staff and mentor coordinators, a DPO and ops viewer at each (acting for
their own organisation only), the study's researchers at the Trust that sponsors it. A token
whose role its organisation may not hold is refused.
Services are not people and hold no role: they have identities of their own."""


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
    """Who is calling: a person of one organisation with roles, or one of Peerlink's services.

    ``service`` names the service when a service acts alone (its own token); ``via`` names the
    service a person's request came through (on-behalf-of). ``token`` is the bearer token the
    caller presented, so that a service can act on the caller's behalf at another service.
    """

    subject: str
    org: str
    roles: frozenset[str]
    org_kind: str = "nhs-trust"
    service: str | None = None
    via: str | None = None
    token: str | None = field(default=None, compare=False, repr=False)

    def has_any(self, roles: frozenset[str]) -> bool:
        """Whether the caller holds at least one of the roles."""
        return bool(self.roles & roles)

    @property
    def is_service(self) -> bool:
        """Whether this is a service acting alone (no person)."""
        return self.service is not None


def generate_signing_key() -> bytes:
    """A new ES256 (P-256) private key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_jwk(public_key: Any, alg: str = SIGNING_ALGORITHM) -> dict[str, str]:
    """A public key as a JWK with its RFC 7638 thumbprint as ``kid``."""
    algorithm = jwt.algorithms.ECAlgorithm if alg.startswith("ES") else \
        jwt.algorithms.RSAAlgorithm
    jwk: dict[str, str] = algorithm.to_jwk(public_key, as_dict=True)
    required = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"),
                           sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    return {**{k: jwk[k] for k in required}, "kid": kid.decode(), "alg": alg, "use": "sig"}


class TokenIssuer:
    """Mints people's and services' tokens with the issuer's private key (ES256, ``kid``).

    Only the issuer holds one: the development issuer (``peerlink issuer``, ``peerlink token``)
    or, in production, the organisation's identity provider.
    """

    def __init__(self, private_key_pem: bytes, organisations: Mapping[str, str],
                 issuer: str = "peerlink", lifetime_seconds: int = 8 * 3600,
                 service_lifetime_seconds: int = 15 * 60) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("the issuer's signing key must be an EC P-256 private key")
        self._key = key
        self._jwk = public_jwk(key.public_key())
        self._organisations = organisations
        self._issuer = issuer
        self._lifetime = lifetime_seconds
        self._service_lifetime = service_lifetime_seconds

    @property
    def kid(self) -> str:
        """The signing key's id (its JWK thumbprint)."""
        return self._jwk["kid"]

    @property
    def service_lifetime_seconds(self) -> int:
        """How long a service token lasts."""
        return self._service_lifetime

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public key set verifiers use."""
        return {"keys": [dict(self._jwk)]}

    def _sign(self, claims: dict[str, Any], lifetime: int) -> str:
        now = int(time.time())
        claims = {"iss": self._issuer, "aud": AUDIENCE, "iat": now, "exp": now + lifetime,
                  **claims, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._key, algorithm=SIGNING_ALGORITHM,
                          headers={"kid": self.kid})

    def mint(self, org: str, roles: list[str], subject: str | None = None,
             lifetime_seconds: int | None = None) -> str:
        """A signed token for a person of ``org`` with ``roles``."""
        if org not in self._organisations:
            raise ValueError(f"unknown organisation {org!r}; configured: "
                             f"{', '.join(sorted(self._organisations))}")
        unknown = sorted(set(roles) - ROLES)
        if not roles or unknown:
            raise ValueError(f"roles must be among {', '.join(sorted(ROLES))}")
        refusal = role_refusal(set(roles), self._organisations[org])
        if refusal:
            raise ValueError(refusal)
        return self._sign({"sub": subject or f"dev-{uuid.uuid4().hex[:8]}", "org": org,
                           "roles": sorted(roles)},
                          self._lifetime if lifetime_seconds is None else lifetime_seconds)

    def mint_service(self, service: str, lifetime_seconds: int | None = None) -> str:
        """A signed token for one of Peerlink's services: its name, no organisation or roles."""
        if service not in SERVICE_NAMES:
            raise ValueError(f"unknown service {service!r}")
        return self._sign({"sub": f"svc-{service}", "service": service},
                          self._service_lifetime if lifetime_seconds is None
                          else lifetime_seconds)


class KeySet(Protocol):
    """Public verification keys by ``kid``."""

    def key(self, kid: str) -> jwt.PyJWK:
        """The key with this id; raises ``NotAuthenticated`` when there is none."""
        ...


class JwksFile:
    """A JWKS file (development): read when first needed and again when a ``kid`` is unknown
    and the file has changed since (the issuer may create its key after a service starts)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, jwt.PyJWK] = {}

    def key(self, kid: str) -> jwt.PyJWK:
        """The key with this id."""
        with self._lock:
            if kid not in self._keys:
                self._reload()
            found = self._keys.get(kid)
        if found is None:
            raise NotAuthenticated("the bearer token names an unknown signing key")
        return found

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
        except OSError:
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            keys = jwt.PyJWKSet.from_json(self.path.read_text()).keys
        except (OSError, jwt.PyJWTError, ValueError):
            return
        self._stamp = stamp
        self._keys = {k.key_id: k for k in keys if k.key_id}


class JwksUrl:
    """The identity provider's JWKS (production): fetched, cached, fetched again on an unknown
    ``kid`` at most once per ``refetch_floor_seconds``."""

    def __init__(self, url: str, refetch_floor_seconds: float = 30.0,
                 cache_seconds: float = 300.0, timeout: float = 5.0) -> None:
        self.url = url
        self._client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=cache_seconds,
                                       timeout=timeout,
                                       cooldown_duration=refetch_floor_seconds)

    def key(self, kid: str) -> jwt.PyJWK:
        """The key with this id."""
        try:
            return self._client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            raise NotAuthenticated("the signing keys could not be fetched") from exc
        except jwt.PyJWKClientError as exc:
            raise NotAuthenticated("the bearer token names an unknown signing key") from exc


class TokenVerifier:
    """Verifies bearer tokens with public keys only; raises ``NotAuthenticated``."""

    def __init__(self, keys: KeySet, organisations: Mapping[str, str],
                 issuer: str = "peerlink", max_lifetime_seconds: int = 12 * 3600,
                 service_max_lifetime_seconds: int = 15 * 60) -> None:
        self.keys = keys
        self._organisations = organisations
        self._issuer = issuer
        self._max_lifetime = max_lifetime_seconds
        self._service_max_lifetime = service_max_lifetime_seconds

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise NotAuthenticated("the bearer token is not valid") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise NotAuthenticated("the bearer token is not valid: its algorithm is not "
                                   f"accepted (only {', '.join(ALGORITHMS)})")
        if not isinstance(kid, str) or not kid:
            raise NotAuthenticated("the bearer token is not valid: it names no signing key")
        key = self.keys.key(kid)
        if key.algorithm_name != alg:
            raise NotAuthenticated("the bearer token is not valid: its algorithm does not "
                                   "match its signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=[alg], audience=AUDIENCE, issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]})
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticated("the bearer token has expired") from exc
        except jwt.PyJWTError as exc:
            raise NotAuthenticated("the bearer token is not valid") from exc
        return claims

    def verify(self, token: str) -> Principal:
        """The caller a token names."""
        claims = self._claims(token)
        lifetime = claims["exp"] - claims["iat"]
        if "service" in claims:
            return self._service(claims, lifetime, token)
        if lifetime > self._max_lifetime:
            raise NotAuthenticated("the bearer token is refused: lifetime over the maximum")
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
                         org_kind=kind, token=token)

    def _service(self, claims: dict[str, Any], lifetime: int, token: str) -> Principal:
        name = claims["service"]
        if lifetime > self._service_max_lifetime:
            raise NotAuthenticated("the service token is refused: lifetime over the maximum")
        if name not in SERVICE_NAMES or claims["sub"] != f"svc-{name}":
            raise NotAuthenticated("the service token names an unknown service")
        if claims.get("roles") or "org" in claims:
            raise NotAuthenticated("the service token is refused: a service holds no "
                                   "organisation or roles")
        return Principal(subject=str(claims["sub"]), org=SERVICE_ORG, roles=frozenset(),
                         org_kind="service", service=str(name), token=token)
