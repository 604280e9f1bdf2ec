"""The development token issuer (``peerlink issuer``, port 8100).

It alone holds the signing key. It mints people's tokens for ``peerlink token`` and
``peerlink up``, and gives each calling service short-lived tokens of its own by the OAuth 2.0
client-credentials grant (``POST /oauth/token``); ``GET /.well-known/jwks.json`` publishes the
public key. In production an organisation's identity provider takes its place
(``PEERLINK_TOKEN_URL``, ``PEERLINK_JWT_JWKS_URL``): this module refuses to run there.

Its files live under ``var/keys/``: the private key (``issuer-signing-key.pem``, mode 600),
the public ``jwks.json`` every verifier reads, ``clients.json`` with only the SHA-256 digests of
the client secrets, and each calling service's secret in ``clients/<service>.secret``, which
only that service is pointed at. Where a service's secret is provisioned from outside (the
compose stack's secret files), ``PEERLINK_<SERVICE>_CLIENT_SECRET_FILE`` given to the issuer
registers that secret's digest instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.auth import TokenIssuer, generate_signing_key
from shared.http import create_api, error_body
from shared.settings import PlatformSettings, ServiceClientSettings

CALLING_SERVICES: Final[tuple[str, ...]] = ("screening", "mentoring")
"""The services that call another service (consent) and so have a credential. Reporting calls
nothing and has none; consent is called, never calls."""


class DevelopmentIssuerFiles:
    """Where the development issuer keeps its key, public key set and client credentials."""

    def __init__(self, keys_dir: Path) -> None:
        self.dir = keys_dir
        self.signing_key = keys_dir / "issuer-signing-key.pem"
        self.jwks = keys_dir / "jwks.json"
        self.clients = keys_dir / "clients.json"

    def secret_file(self, service: str) -> Path:
        """The file holding one calling service's client secret."""
        return self.dir / "clients" / f"{service}.secret"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.dir / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def ensure(self, settings: PlatformSettings) -> TokenIssuer:
        """The development issuer, creating its key, JWKS and client secrets on first use."""
        with self._locked():
            if not self.signing_key.exists():
                _write(self.signing_key, generate_signing_key(), 0o600)
            issuer = _issuer(self.signing_key.read_bytes(), settings)
            jwks = json.dumps(issuer.jwks(), indent=2).encode()
            if not self.jwks.exists() or self.jwks.read_bytes() != jwks:
                _write(self.jwks, jwks, 0o644)
            digests = self.client_digests()
            for service in CALLING_SERVICES:
                configured = ServiceClientSettings.for_service(service).client_secret_file
                if configured is not None:
                    digests[service] = secret_digest(configured.read_text().strip())
                elif service not in digests or not self.secret_file(service).exists():
                    secret = secrets.token_urlsafe(32)
                    self.secret_file(service).parent.mkdir(exist_ok=True, mode=0o700)
                    _write(self.secret_file(service), secret.encode(), 0o600)
                    digests[service] = secret_digest(secret)
            _write(self.clients, json.dumps(digests, indent=2, sort_keys=True).encode(), 0o600)
        return issuer

    def client_digests(self) -> dict[str, str]:
        """Client id to the digest of its secret."""
        if not self.clients.exists():
            return {}
        digests: dict[str, str] = json.loads(self.clients.read_text())
        return digests


def _write(path: Path, content: bytes, mode: int) -> None:
    """Replace a file atomically, readable only as ``mode`` allows."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def _issuer(pem: bytes, settings: PlatformSettings) -> TokenIssuer:
    return TokenIssuer(pem, {org: o.kind for org, o in settings.organisations.items()},
                       settings.jwt_issuer, settings.token_lifetime_seconds,
                       min(15 * 60, settings.service_token_max_lifetime_seconds))


def secret_digest(secret: str) -> str:
    """What the issuer stores of a client secret (the secret is 256 random bits)."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def development_issuer(settings: PlatformSettings) -> TokenIssuer:
    """The development issuer under ``var/keys`` (created on first use); never in production."""
    if settings.env == "production":
        raise ValueError("the development issuer does not run with PEERLINK_ENV=production: "
                         "tokens come from the organisation's identity provider")
    return DevelopmentIssuerFiles(settings.development_keys_dir()).ensure(settings)


class ClientRegistry:
    """Calling services' credentials, as digests only."""

    def __init__(self, digests: dict[str, str]) -> None:
        self._digests = dict(digests)

    def authenticate(self, client_id: str, secret: str) -> bool:
        """Whether ``secret`` is ``client_id``'s (compared in constant time)."""
        expected = self._digests.get(client_id)
        presented = secret_digest(secret)
        return expected is not None and hmac.compare_digest(expected, presented)


def _oauth_error(status: int, error: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="peerlink"'} if status == 401 else None
    return JSONResponse(status_code=status, content=error_body(error, message),
                        headers=headers)


def build_issuer_api(issuer: TokenIssuer, clients: ClientRegistry) -> FastAPI:
    """The issuer's HTTP API."""
    app = create_api("issuer", title="Peerlink development token issuer",
                     description="Service tokens by the client-credentials grant, and the "
                                 "public keys (JWKS). Development only.")

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        """A service token for a calling service (RFC 6749 section 4.4)."""
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        fields: dict[str, Any] = {k: v[0] for k, v in form.items() if len(v) == 1}
        if fields.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type",
                                "only grant_type=client_credentials is supported")
        client_id, secret = fields.get("client_id"), fields.get("client_secret")
        if not client_id or not secret or not clients.authenticate(client_id, secret):
            return _oauth_error(401, "invalid_client", "the client is unknown or its secret "
                                "is wrong")
        return JSONResponse(
            {"access_token": issuer.mint_service(client_id), "token_type": "Bearer",
             "expires_in": issuer.service_lifetime_seconds},
            headers={"Cache-Control": "no-store"})

    @app.get("/.well-known/jwks.json")
    def jwks() -> dict[str, Any]:
        """The public keys that verify every token this issuer signs."""
        return issuer.jwks()

    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The development issuer for the process's settings."""
    issuer = development_issuer(settings)
    files = DevelopmentIssuerFiles(settings.development_keys_dir())
    return build_issuer_api(issuer, ClientRegistry(files.client_digests()))
