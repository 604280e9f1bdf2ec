"""The development issuer over HTTP: its JWKS (fetched by PyJWT's client and by our
verifier), the client-credentials grant, how a service caches its token, and agreement with a
JOSE library we did not write (joserfc) in both directions."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from joserfc import jwk as jose_jwk
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError

import shared.service_tokens as service_tokens_module
from shared.auth import AUDIENCE, JwksUrl, NotAuthenticated, TokenVerifier
from shared.issuer import (
    CALLING_SERVICES,
    DevelopmentIssuerFiles,
    create_app,
    development_issuer,
)
from shared.runtime import service_credentials, token_verifier
from shared.service_tokens import ClientCredentials, ServiceTokenUnavailable
from shared.settings import PlatformSettings
from tests.support.http import serving

ORGS = {"trust": "nhs-trust", "partner-a": "dva-partner", "partner-b": "dva-partner"}


@pytest.fixture
def settings(tmp_path: Path) -> PlatformSettings:
    return PlatformSettings(var_dir=tmp_path, env="test")


@pytest.fixture
def issuer_url(settings: PlatformSettings) -> Iterator[str]:
    with serving(create_app(settings)) as url:
        yield url


def secret_of(settings: PlatformSettings, service: str) -> str:
    return DevelopmentIssuerFiles(settings.development_keys_dir()).secret_file(
        service).read_text()


def grant(url: str, **fields: str) -> httpx.Response:
    return httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", **fields},
                      timeout=10)


# --- files ---------------------------------------------------------------------------------

def test_the_issuer_keeps_its_key_private_and_only_digests_of_client_secrets(
        settings: PlatformSettings) -> None:
    development_issuer(settings)
    files = DevelopmentIssuerFiles(settings.development_keys_dir())

    assert stat.S_IMODE(files.signing_key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in files.signing_key.read_bytes()
    assert "PRIVATE" not in files.jwks.read_text() and '"d"' not in files.jwks.read_text()
    digests = files.client_digests()
    assert set(digests) == set(CALLING_SERVICES) == {"screening", "mentoring"}
    for service in CALLING_SERVICES:
        secret = files.secret_file(service).read_text()
        assert stat.S_IMODE(files.secret_file(service).stat().st_mode) == 0o600
        assert len(secret) >= 40
        assert secret not in files.clients.read_text()
        assert digests[service].startswith("sha256:")
    assert not files.secret_file("reporting").exists()


def test_the_development_issuer_keeps_its_key_and_secrets_across_starts(
        settings: PlatformSettings) -> None:
    first = development_issuer(settings)
    secret = secret_of(settings, "screening")
    again = development_issuer(settings)
    assert again.kid == first.kid
    assert secret_of(settings, "screening") == secret


def test_the_development_issuer_refuses_production(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="identity provider"):
        development_issuer(PlatformSettings(var_dir=tmp_path, env="production"))
    assert not (tmp_path / "keys").exists()


# --- JWKS over HTTP ------------------------------------------------------------------------

def test_the_jwks_is_served_and_pyjwks_client_verifies_with_it(
        settings: PlatformSettings, issuer_url: str) -> None:
    token = development_issuer(settings).mint("trust", ["clinician"], subject="user-1")

    served = httpx.get(f"{issuer_url}/.well-known/jwks.json", timeout=10).json()
    key = jwt.PyJWKClient(f"{issuer_url}/.well-known/jwks.json").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=AUDIENCE,
                        issuer=settings.jwt_issuer)

    assert [k["kid"] for k in served["keys"]] == [key.key_id]
    assert all("d" not in k for k in served["keys"])
    assert claims["sub"] == "user-1"


def test_a_verifier_on_a_jwks_url_refetches_on_an_unknown_kid(settings: PlatformSettings,
                                                             issuer_url: str) -> None:
    """A key the identity provider adds later is fetched when a token names it (the floor
    between refetches set to 0 here)."""
    issuer = development_issuer(settings)
    verifier = TokenVerifier(JwksUrl(f"{issuer_url}/.well-known/jwks.json",
                                     refetch_floor_seconds=0), ORGS)
    assert verifier.verify(issuer.mint("trust", ["dpo"])).roles == {"dpo"}

    rotated_settings = settings.model_copy(update={"var_dir": settings.var_dir / "rotated"})
    rotated = development_issuer(rotated_settings)
    with pytest.raises(NotAuthenticated, match="unknown signing key"):
        verifier.verify(rotated.mint("trust", ["dpo"]))
    with serving(create_app(rotated_settings)) as rotated_url:
        moving = JwksUrl(f"{rotated_url}/.well-known/jwks.json", refetch_floor_seconds=0)
        assert TokenVerifier(moving, ORGS).verify(rotated.mint("trust", ["dpo"])).org == "trust"


def test_an_unreachable_jwks_url_is_a_401_not_a_crash() -> None:
    verifier = TokenVerifier(JwksUrl("http://127.0.0.1:9/.well-known/jwks.json",
                                     timeout=0.5), ORGS)
    token = jwt.encode({"sub": "x"}, "s" * 64, algorithm="HS256")
    with pytest.raises(NotAuthenticated):
        verifier.verify(token)
    es_token = jwt.encode({"sub": "x"}, _p256_pem(), algorithm="ES256", headers={"kid": "k"})
    with pytest.raises(NotAuthenticated, match="could not be fetched"):
        verifier.verify(es_token)


def _p256_pem() -> bytes:
    from shared.auth import generate_signing_key

    return generate_signing_key()


# --- the client-credentials grant ----------------------------------------------------------

@pytest.mark.parametrize("service", CALLING_SERVICES)
def test_a_calling_service_gets_a_short_lived_token_of_its_own(
        settings: PlatformSettings, issuer_url: str, service: str) -> None:
    response = grant(issuer_url, client_id=service, client_secret=secret_of(settings, service))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 900)
    assert response.headers["cache-control"] == "no-store"
    caller = token_verifier(settings).verify(body["access_token"])
    assert (caller.service, caller.subject, caller.roles) == (
        service, f"svc-{service}", frozenset())


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        pytest.param({"client_id": "screening", "client_secret": "Zq-7731-guess"}, 401,
                     "invalid_client", id="wrong-secret"),
        pytest.param({"client_id": "screening", "client_secret": "@mentoring"}, 401,
                     "invalid_client", id="another-services-secret"),
        pytest.param({"client_id": "reporting", "client_secret": "@screening"}, 401,
                     "invalid_client", id="reporting-has-no-credential"),
        pytest.param({"client_id": "billing", "client_secret": "x"}, 401, "invalid_client",
                     id="unknown-client"),
        pytest.param({"client_id": "screening"}, 401, "invalid_client", id="no-secret"),
        pytest.param({"client_secret": "@screening"}, 401, "invalid_client",
                     id="no-client-id"),
        pytest.param({"grant_type": "password", "client_id": "screening",
                      "client_secret": "@screening"}, 400, "unsupported_grant_type",
                     id="another-grant"),
    ],
)
def test_the_token_endpoint_refuses(settings: PlatformSettings, issuer_url: str,
                                    fields: dict[str, str], status: int, error: str) -> None:
    fields = {k: secret_of(settings, v[1:]) if v.startswith("@") else v
              for k, v in fields.items()}
    response = grant(issuer_url, **fields)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert "access_token" not in response.text
    for secret in (fields.get("client_secret"), secret_of(settings, "screening")):
        assert not secret or secret not in response.text


def test_a_service_caches_its_token_until_shortly_before_expiry(
        settings: PlatformSettings, issuer_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_post = httpx.post

    def counting_post(url: str, **kwargs: Any) -> httpx.Response:
        calls.append(url)
        return real_post(url, **kwargs)

    clock = [1000.0]
    monkeypatch.setattr(service_tokens_module.httpx, "post", counting_post)
    configured = service_credentials("screening", settings.model_copy(
        update={"token_url": f"{issuer_url}/oauth/token"}))
    credentials = ClientCredentials("screening", configured.token_url, configured.secret_file,
                                    clock=lambda: clock[0])

    first = credentials.token()
    clock[0] += 15 * 60 - 61
    assert credentials.token() == first
    assert len(calls) == 1
    clock[0] += 2
    time.sleep(1.1)  # a new iat, so a new token
    assert credentials.token() != first
    assert len(calls) == 2


def test_a_service_without_its_secret_gets_no_token(settings: PlatformSettings,
                                                    issuer_url: str, tmp_path: Path) -> None:
    missing = ClientCredentials("screening", f"{issuer_url}/oauth/token",
                                tmp_path / "nowhere.secret")
    with pytest.raises(ServiceTokenUnavailable, match="secret file"):
        missing.token()
    (tmp_path / "wrong.secret").write_text("not-the-secret")
    wrong = ClientCredentials("screening", f"{issuer_url}/oauth/token",
                              tmp_path / "wrong.secret")
    with pytest.raises(ServiceTokenUnavailable, match="401"):
        wrong.token()


def test_production_needs_a_token_url_and_a_client_secret_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    production = PlatformSettings(var_dir=tmp_path, env="production")
    with pytest.raises(ValueError, match="PEERLINK_SCREENING_CLIENT_SECRET_FILE"):
        service_credentials("screening", production)
    monkeypatch.setenv("PEERLINK_SCREENING_CLIENT_SECRET_FILE", str(tmp_path / "s"))
    with pytest.raises(ValueError, match="PEERLINK_TOKEN_URL"):
        service_credentials("screening", production)
    configured = service_credentials("screening", production.model_copy(
        update={"token_url": "https://idp.example/oauth2/token"}))
    assert (configured.token_url, configured.secret_file) == (
        "https://idp.example/oauth2/token", tmp_path / "s")
    with pytest.raises(ValueError, match="PEERLINK_JWT_JWKS_URL"):
        token_verifier(production)


def test_the_issuer_app_answers_health_without_a_token(settings: PlatformSettings) -> None:
    assert TestClient(create_app(settings)).get("/healthz").json() == {
        "status": "ok", "service": "issuer"}


# --- another library, both directions ------------------------------------------------------

def test_joserfc_verifies_a_token_we_minted_against_our_jwks(
        settings: PlatformSettings) -> None:
    issuer = development_issuer(settings)
    token = issuer.mint("partner-a", ["partner-staff"], subject="user-9")
    key_set = jose_jwk.KeySet.import_key_set(
        json.loads((settings.development_keys_dir() / "jwks.json").read_text()))

    decoded = jose_jwt.decode(token, key_set, algorithms=["ES256"])
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": settings.jwt_issuer},
        aud={"essential": True, "value": AUDIENCE}, iat={"essential": True},
        exp={"essential": True}).validate(decoded.claims)

    assert decoded.header["kid"] == issuer.kid
    assert (decoded.claims["sub"], decoded.claims["org"], decoded.claims["roles"]) == (
        "user-9", "partner-a", ["partner-staff"])
    with pytest.raises(JoseError):
        jose_jwt.decode(token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"), key_set,
                        algorithms=["ES256"])


def _joserfc_token(key: Any, alg: str = "ES256", **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": "peerlink", "aud": AUDIENCE, "iat": now, "exp": now + 300,
              "sub": "idp-user", "org": "trust", "roles": ["clinician"], "jti": "j", **changes}
    return jose_jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def test_our_verifier_accepts_a_token_joserfc_minted_with_a_key_in_the_jwks(
        tmp_path: Path) -> None:
    key = jose_jwk.ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    key.ensure_kid()
    rsa = jose_jwk.RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
    rsa.ensure_kid()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False),
                                         rsa.as_dict(private=False)]}))
    verifier = token_verifier(PlatformSettings(var_dir=tmp_path, jwt_jwks_file=jwks))

    assert verifier.verify(_joserfc_token(key)).subject == "idp-user"
    assert verifier.verify(_joserfc_token(rsa, "RS256")).org == "trust"
    with pytest.raises(NotAuthenticated, match="lifetime over the maximum"):
        verifier.verify(_joserfc_token(key, exp=int(time.time()) + 13 * 3600))
    with pytest.raises(NotAuthenticated, match="kind nhs-trust"):
        verifier.verify(_joserfc_token(key, roles=["partner-staff"]))
    secret = jose_jwk.OctKey.import_key(json.dumps(key.as_dict(private=False)).encode())
    secret.ensure_kid()
    forged = jose_jwt.encode({"alg": "HS256", "kid": key.kid}, {"sub": "x"}, secret,
                             algorithms=["HS256"])
    with pytest.raises(NotAuthenticated, match="algorithm is not accepted"):
        verifier.verify(forged)


def test_a_client_secret_provisioned_from_outside_is_registered_by_its_digest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compose stack gives the issuer and screening the same secret file."""
    provisioned = tmp_path / "screening_client_secret"
    provisioned.write_text("provisioned-secret-of-screening-0123456789\n")
    monkeypatch.setenv("PEERLINK_SCREENING_CLIENT_SECRET_FILE", str(provisioned))
    settings = PlatformSettings(var_dir=tmp_path / "var", env="test")
    development_issuer(settings)
    files = DevelopmentIssuerFiles(settings.development_keys_dir())

    assert not files.secret_file("screening").exists()
    assert files.secret_file("mentoring").exists()
    with serving(create_app(settings)) as url:
        token = service_credentials("screening", settings.model_copy(
            update={"token_url": f"{url}/oauth/token"})).token()
    assert token_verifier(settings).verify(token).service == "screening"
    assert "provisioned-secret" not in files.clients.read_text()
