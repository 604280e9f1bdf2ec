"""Bearer tokens: the issuer alone signs (ES256); verification uses public keys only and is
strict about algorithm, key, issuer, audience, lifetime and roles for the organisation's kind."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import shared.auth as auth_module
from shared.auth import (
    AUDIENCE,
    ROLE_POLICY,
    ROLES,
    SERVICE_ORG,
    JwksFile,
    NotAuthenticated,
    Principal,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key,
    public_jwk,
)

ORGS = {"trust": "nhs-trust", "partner-a": "dva-partner", "partner-b": "dva-partner"}
KEY = generate_signing_key()
OTHER_KEY = generate_signing_key()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
P384_KEY = ec.generate_private_key(ec.SECP384R1())


class StaticKeys:
    """A fixed JWKS."""

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self._keys = {k["kid"]: jwt.PyJWK(k) for k in jwks}

    def key(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            raise NotAuthenticated("the bearer token names an unknown signing key")
        return self._keys[kid]


ISSUER = TokenIssuer(KEY, ORGS)
OTHER = TokenIssuer(OTHER_KEY, ORGS)
[OUR_JWK] = ISSUER.jwks()["keys"]
RSA_JWK = public_jwk(RSA_KEY.public_key(), "RS256")


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(StaticKeys(OUR_JWK, RSA_JWK), ORGS)


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims as ``mint`` would write them, with overrides (None deletes a claim)."""
    now = int(time.time())
    base: dict[str, Any] = {"iss": "peerlink", "aud": AUDIENCE, "iat": now, "exp": now + 600,
                            "sub": "dev-1234", "org": "trust", "roles": ["clinician"],
                            "jti": "j1"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def service_claims(**overrides: Any) -> dict[str, Any]:
    return claims(**{"sub": "svc-screening", "service": "screening", "org": None,
                     "roles": None, **overrides})


def signed(payload: dict[str, Any], key: Any = None, alg: str = "ES256",
           kid: str | None = OUR_JWK["kid"]) -> str:
    """A token signed by PyJWT with any key (ours by default)."""
    private = serialization.load_pem_private_key(KEY, None) if key is None else key
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, private, algorithm=alg, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any],
              signature: bytes | None = None, secret: bytes = b"") -> str:
    """A token put together by hand: for algorithms a library refuses to produce."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if signature is None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() \
            if secret else b""
    return f"{signing_input}.{_b64(signature)}"


PUBLIC_PEM = serialization.load_pem_private_key(KEY, None).public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_roles_are_the_documented_seven_and_service_is_not_one() -> None:
    expected = {"clinician", "safeguarding-lead", "partner-staff", "mentor-coordinator",
                "ops-viewer", "dpo", "researcher"}
    assert expected == ROLES == set(ROLE_POLICY)
    assert "service" not in ROLES


@pytest.mark.parametrize(
    ("given_org", "given_roles"),
    [
        pytest.param("trust", ["clinician"], id="trust-clinician"),
        pytest.param("partner-a", ["partner-staff"], id="partner-a-staff"),
        pytest.param("partner-b", ["mentor-coordinator", "ops-viewer"], id="two-roles"),
        pytest.param("trust", ["dpo", "safeguarding-lead", "clinician"], id="three-roles"),
    ],
)
def test_mint_then_verify_round_trips(verifier: TokenVerifier, given_org: str,
                                      given_roles: list[str]) -> None:
    token = ISSUER.mint(given_org, given_roles, subject="user-7")
    principal = verifier.verify(token)
    assert principal == Principal(subject="user-7", org=given_org,
                                  roles=frozenset(given_roles), org_kind=ORGS[given_org])
    assert principal.token == token
    assert principal.service is None and principal.via is None
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": ISSUER.kid,
                                                "typ": "JWT"}
    assert set(jwt.decode(token, options={"verify_signature": False})) == {
        "iss", "aud", "iat", "exp", "sub", "org", "roles", "jti"}


def test_the_token_is_not_in_the_principals_repr(verifier: TokenVerifier) -> None:
    token = ISSUER.mint("trust", ["clinician"])
    assert token not in repr(verifier.verify(token))


def test_mint_without_subject_gives_a_dev_subject(verifier: TokenVerifier) -> None:
    assert verifier.verify(ISSUER.mint("trust", ["clinician"])).subject.startswith("dev-")


def test_a_service_token_names_the_service_and_no_roles(verifier: TokenVerifier) -> None:
    token = ISSUER.mint_service("mentoring")
    principal = verifier.verify(token)
    assert (principal.subject, principal.service, principal.roles, principal.org) == (
        "svc-mentoring", "mentoring", frozenset(), SERVICE_ORG)
    assert principal.is_service
    decoded = jwt.decode(token, options={"verify_signature": False})
    assert "roles" not in decoded and "org" not in decoded
    assert decoded["exp"] - decoded["iat"] == 15 * 60


@pytest.mark.parametrize(
    ("given_org", "given_roles", "expected_message"),
    [
        pytest.param("partner-z", ["clinician"], "unknown organisation", id="unknown-org"),
        pytest.param("", ["clinician"], "unknown organisation", id="empty-org"),
        pytest.param("trust", ["admin"], "roles must be among", id="unknown-role"),
        pytest.param("trust", ["service"], "roles must be among", id="service-is-no-role"),
        pytest.param("trust", ["clinician", "root"], "roles must be among",
                     id="one-unknown-role"),
        pytest.param("trust", [], "roles must be among", id="no-roles"),
        pytest.param("partner-a", ["clinician"], "kind dva-partner", id="partner-clinician"),
        pytest.param("trust", ["partner-staff"], "kind nhs-trust", id="trust-partner-staff"),
    ],
)
def test_mint_refuses_unknown_org_or_role(given_org: str, given_roles: list[str],
                                          expected_message: str) -> None:
    with pytest.raises(ValueError, match=expected_message):
        ISSUER.mint(given_org, given_roles)


def test_mint_service_refuses_an_unknown_service() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        ISSUER.mint_service("billing")


def test_the_issuer_refuses_a_key_that_is_not_p256() -> None:
    pem = RSA_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    with pytest.raises(ValueError, match="P-256"):
        TokenIssuer(pem, ORGS)


def tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{header}.{payload}.{flipped}{signature[1:]}"


def forge_payload(token: str) -> str:
    """Swap the payload for one naming another organisation, keeping the signature."""
    header, _payload, signature = token.split(".")
    other = signed(claims(org="partner-a", roles=["partner-staff"])).split(".")[1]
    return f"{header}.{other}.{signature}"


HOUR = 3600
NOW = int(time.time())
REJECTED = [
    pytest.param(lambda: tamper(ISSUER.mint("trust", ["clinician"])), "not valid",
                 id="tampered-signature"),
    pytest.param(lambda: forge_payload(ISSUER.mint("trust", ["clinician"])), "not valid",
                 id="tampered-payload"),
    pytest.param(lambda: OTHER.mint("trust", ["clinician"]), "unknown signing key",
                 id="another-issuers-key"),
    pytest.param(lambda: signed(claims(), serialization.load_pem_private_key(OTHER_KEY, None)),
                 "not valid", id="wrong-key-under-our-kid"),
    pytest.param(lambda: signed(claims(), kid="no-such-key"), "unknown signing key",
                 id="unknown-kid"),
    pytest.param(lambda: signed(claims(), kid=None), "names no signing key", id="no-kid"),
    pytest.param(lambda: hand_made({"alg": "HS256", "typ": "JWT", "kid": OUR_JWK["kid"]},
                                   claims(), secret=PUBLIC_PEM),
                 "algorithm is not accepted", id="hs256-with-the-public-key-as-secret"),
    pytest.param(lambda: hand_made({"alg": "none", "typ": "JWT", "kid": OUR_JWK["kid"]},
                                   claims()), "algorithm is not accepted", id="alg-none"),
    pytest.param(lambda: hand_made({"alg": "None", "kid": OUR_JWK["kid"]}, claims()),
                 "algorithm is not accepted", id="alg-None"),
    pytest.param(lambda: jwt.encode(claims(), "s" * 64, algorithm="HS512",
                                    headers={"kid": OUR_JWK["kid"]}),
                 "algorithm is not accepted", id="hs512"),
    pytest.param(lambda: signed(claims(), P384_KEY, alg="ES384"), "algorithm is not accepted",
                 id="es384"),
    pytest.param(lambda: signed(claims(), RSA_KEY, alg="PS256", kid=RSA_JWK["kid"]),
                 "algorithm is not accepted", id="ps256"),
    pytest.param(lambda: signed(claims(), RSA_KEY, alg="RS256", kid=OUR_JWK["kid"]),
                 "does not match its signing key", id="rs256-under-our-ec-kid"),
    pytest.param(lambda: signed(claims(iss="elsewhere")), "not valid", id="wrong-issuer"),
    pytest.param(lambda: signed(claims(iss=None)), "not valid", id="no-issuer"),
    pytest.param(lambda: signed(claims(aud="other")), "not valid", id="wrong-audience"),
    pytest.param(lambda: signed(claims(aud=None)), "not valid", id="no-audience"),
    pytest.param(lambda: signed(claims(iat=None)), "not valid", id="missing-iat"),
    pytest.param(lambda: signed(claims(exp=None)), "not valid", id="missing-exp"),
    pytest.param(lambda: signed(claims(sub=None)), "not valid", id="missing-sub"),
    pytest.param(lambda: ISSUER.mint("trust", ["clinician"], lifetime_seconds=-10), "expired",
                 id="expired"),
    pytest.param(lambda: signed(claims(iat=NOW - 100, exp=NOW - 5)), "expired",
                 id="crafted-expired"),
    pytest.param(lambda: ISSUER.mint("trust", ["clinician"], lifetime_seconds=12 * HOUR + 1),
                 "lifetime over the maximum", id="person-just-over-12h"),
    pytest.param(lambda: signed(claims(exp=NOW + 100 * 365 * 24 * HOUR)),
                 "lifetime over the maximum", id="person-100-years"),
    pytest.param(lambda: ISSUER.mint_service("screening", lifetime_seconds=15 * 60 + 1),
                 "lifetime over the maximum", id="service-just-over-15min"),
    pytest.param(lambda: signed(service_claims(exp=NOW + 12 * HOUR)),
                 "lifetime over the maximum", id="service-12h"),
    pytest.param(lambda: signed(claims(org="partner-a", roles=["clinician"])),
                 "role clinician does not exist at an organisation of kind dva-partner",
                 id="role-not-at-the-orgs-kind"),
    pytest.param(lambda: signed(claims(roles=["partner-staff", "clinician"])),
                 "role partner-staff does not exist", id="one-role-not-at-the-orgs-kind"),
    pytest.param(lambda: TokenIssuer(KEY, ORGS | {"rogue": "nhs-trust"})
                 .mint("rogue", ["clinician"]), "unknown organisation", id="org-not-configured"),
    pytest.param(lambda: signed(claims(org=None)), "unknown organisation", id="no-org"),
    pytest.param(lambda: signed(claims(roles=["service"])), "unknown roles",
                 id="the-old-service-role"),
    pytest.param(lambda: signed(claims(roles=["admin"])), "unknown roles", id="unknown-role"),
    pytest.param(lambda: signed(claims(roles=[])), "unknown roles", id="empty-roles"),
    pytest.param(lambda: signed(claims(roles="clinician")), "unknown roles",
                 id="roles-not-a-list"),
    pytest.param(lambda: signed(service_claims(service="billing", sub="svc-billing")),
                 "unknown service", id="unknown-service"),
    pytest.param(lambda: signed(service_claims(sub="svc-mentoring")), "unknown service",
                 id="service-subject-mismatch"),
    pytest.param(lambda: signed(service_claims(roles=["dpo"])), "no organisation or roles",
                 id="service-with-roles"),
    pytest.param(lambda: signed(service_claims(org="trust")), "no organisation or roles",
                 id="service-with-an-org"),
    pytest.param(lambda: "not-a-jwt", "not valid", id="garbage"),
    pytest.param(lambda: "", "not valid", id="empty"),
]


@pytest.mark.parametrize(("given_token", "expected_message"), REJECTED)
def test_verify_rejects(verifier: TokenVerifier, given_token: Any,
                        expected_message: str) -> None:
    token = given_token()
    with pytest.raises(NotAuthenticated, match=expected_message):
        verifier.verify(token)


def test_an_rs256_token_from_an_identity_provider_is_accepted(verifier: TokenVerifier) -> None:
    token = signed(claims(sub="idp-user"), RSA_KEY, alg="RS256", kid=RSA_JWK["kid"])
    assert verifier.verify(token).subject == "idp-user"


@pytest.mark.parametrize(("lifetime", "service"), [
    pytest.param(12 * HOUR, False, id="person-exactly-12h"),
    pytest.param(15 * 60, True, id="service-exactly-15min"),
])
def test_the_maximum_lifetime_itself_is_accepted(verifier: TokenVerifier, lifetime: int,
                                                 service: bool) -> None:
    token = ISSUER.mint_service("screening", lifetime) if service else \
        ISSUER.mint("trust", ["clinician"], lifetime_seconds=lifetime)
    assert verifier.verify(token).subject


def test_the_maximum_lifetimes_are_configurable() -> None:
    strict = TokenVerifier(StaticKeys(OUR_JWK), ORGS, max_lifetime_seconds=60,
                           service_max_lifetime_seconds=30)
    with pytest.raises(NotAuthenticated, match="lifetime over the maximum"):
        strict.verify(ISSUER.mint("trust", ["clinician"], lifetime_seconds=61))
    with pytest.raises(NotAuthenticated, match="lifetime over the maximum"):
        strict.verify(ISSUER.mint_service("screening", 31))
    assert strict.verify(ISSUER.mint_service("screening", 30)).service == "screening"


@pytest.mark.parametrize(
    ("given_minted_seconds_ago", "expected_valid"),
    [
        pytest.param(0, True, id="fresh"),
        pytest.param(50, True, id="within-lifetime"),
        pytest.param(61, False, id="just-past-lifetime"),
        pytest.param(3600, False, id="long-past-lifetime"),
    ],
)
def test_a_token_expires_once_its_lifetime_has_passed(verifier: TokenVerifier,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      given_minted_seconds_ago: int,
                                                      expected_valid: bool) -> None:
    minted_at = time.time() - given_minted_seconds_ago
    monkeypatch.setattr(auth_module, "time", SimpleNamespace(time=lambda: minted_at))
    token = ISSUER.mint("trust", ["clinician"], lifetime_seconds=60)
    monkeypatch.undo()
    if expected_valid:
        assert verifier.verify(token).org == "trust"
    else:
        with pytest.raises(NotAuthenticated, match="expired"):
            verifier.verify(token)


def test_mint_sets_the_default_lifetime() -> None:
    decoded = jwt.decode(ISSUER.mint("trust", ["clinician"]), options={
        "verify_signature": False})
    assert decoded["exp"] - decoded["iat"] == 8 * 3600


def test_the_kid_is_the_keys_rfc7638_thumbprint() -> None:
    jwk = {k: OUR_JWK[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    assert OUR_JWK["kid"] == _b64(hashlib.sha256(canonical).digest())
    assert "d" not in OUR_JWK


def test_a_jwks_file_written_after_start_is_read_on_an_unknown_kid(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    verifier = TokenVerifier(JwksFile(path), ORGS)
    token = ISSUER.mint("trust", ["clinician"])
    with pytest.raises(NotAuthenticated, match="unknown signing key"):
        verifier.verify(token)

    path.write_text(json.dumps(ISSUER.jwks()))
    assert verifier.verify(token).org == "trust"

    path.write_text(json.dumps({"keys": [*ISSUER.jwks()["keys"], *OTHER.jwks()["keys"]]}))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert verifier.verify(OTHER.mint("trust", ["dpo"])).roles == {"dpo"}


def test_a_jwks_file_that_is_not_json_verifies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text("{not json")
    with pytest.raises(NotAuthenticated, match="unknown signing key"):
        TokenVerifier(JwksFile(path), ORGS).verify(ISSUER.mint("trust", ["clinician"]))
