"""Bearer tokens: minting for configured organisations and roles, and strict verification."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import jwt
import pytest

import shared.auth as auth_module
from shared.auth import AUDIENCE, ROLES, NotAuthenticated, Principal, TokenAuthority

SECRET = "unit-test-secret-" + "x" * 64  # long enough for HS512 too
ORGS = {"trust": "nhs-trust", "partner-a": "dva-partner", "partner-b": "dva-partner"}


@pytest.fixture
def authority() -> TokenAuthority:
    return TokenAuthority(SECRET, ORGS)


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims as ``mint`` would write them, with overrides (None deletes a claim)."""
    now = int(time.time())
    base: dict[str, Any] = {"iss": "peerlink", "aud": AUDIENCE, "iat": now, "exp": now + 600,
                            "sub": "dev-1234", "org": "trust", "roles": ["clinician"],
                            "jti": "j1"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_roles_are_the_documented_seven() -> None:
    expected = {"clinician", "safeguarding-lead", "partner-staff", "mentor-coordinator",
                "ops-viewer", "dpo", "service"}
    assert expected == ROLES


@pytest.mark.parametrize(
    ("given_org", "given_roles"),
    [
        pytest.param("trust", ["clinician"], id="trust-clinician"),
        pytest.param("partner-a", ["partner-staff"], id="partner-a-staff"),
        pytest.param("partner-b", ["mentor-coordinator", "ops-viewer"], id="two-roles"),
        pytest.param("trust", ["dpo", "service", "clinician"], id="three-roles"),
    ],
)
def test_mint_then_verify_round_trips(authority: TokenAuthority, given_org: str,
                                      given_roles: list[str]) -> None:
    principal = authority.verify(authority.mint(given_org, given_roles, subject="user-7"))
    assert principal == Principal(subject="user-7", org=given_org,
                                  roles=frozenset(given_roles), org_kind=ORGS[given_org])


def test_mint_without_subject_gives_a_dev_subject(authority: TokenAuthority) -> None:
    principal = authority.verify(authority.mint("trust", ["clinician"]))
    assert principal.subject.startswith("dev-")


@pytest.mark.parametrize(
    ("given_org", "given_roles", "expected_message"),
    [
        pytest.param("partner-z", ["clinician"], "unknown organisation", id="unknown-org"),
        pytest.param("", ["clinician"], "unknown organisation", id="empty-org"),
        pytest.param("trust", ["admin"], "roles must be among", id="unknown-role"),
        pytest.param("trust", ["clinician", "root"], "roles must be among",
                     id="one-unknown-role"),
        pytest.param("trust", [], "roles must be among", id="no-roles"),
    ],
)
def test_mint_refuses_unknown_org_or_role(authority: TokenAuthority, given_org: str,
                                          given_roles: list[str], expected_message: str) -> None:
    with pytest.raises(ValueError, match=expected_message):
        authority.mint(given_org, given_roles)


def tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{header}.{payload}.{flipped}{signature[1:]}"


def forge_payload(token: str) -> str:
    """Swap the payload for one naming another organisation, keeping the signature."""
    header, _payload, signature = token.split(".")
    other = jwt.encode(claims(org="partner-a"), SECRET, algorithm="HS256").split(".")[1]
    return f"{header}.{other}.{signature}"


@pytest.mark.parametrize(
    ("given_token", "expected_message"),
    [
        pytest.param(lambda a: tamper(a.mint("trust", ["clinician"])), "not valid",
                     id="tampered-signature"),
        pytest.param(lambda a: forge_payload(a.mint("trust", ["clinician"])), "not valid",
                     id="tampered-payload"),
        pytest.param(lambda a: TokenAuthority("another-secret-of-sufficient-length!!", ORGS)
                     .mint("trust", ["clinician"]), "not valid", id="wrong-secret"),
        pytest.param(lambda a: a.mint("trust", ["clinician"], lifetime_seconds=-10), "expired",
                     id="expired"),
        pytest.param(lambda a: TokenAuthority(SECRET, ORGS | {"rogue": "nhs-trust"})
                     .mint("rogue", ["clinician"]), "unknown organisation",
                     id="org-not-configured"),
        pytest.param(lambda a: TokenAuthority(SECRET, ORGS, issuer="elsewhere")
                     .mint("trust", ["clinician"]), "not valid", id="wrong-issuer"),
        pytest.param(lambda a: jwt.encode(claims(roles=["admin"]), SECRET, algorithm="HS256"),
                     "unknown roles", id="unknown-role"),
        pytest.param(lambda a: jwt.encode(claims(roles=["clinician", "admin"]), SECRET,
                                          algorithm="HS256"), "unknown roles",
                     id="one-unknown-role"),
        pytest.param(lambda a: jwt.encode(claims(roles=[]), SECRET, algorithm="HS256"),
                     "unknown roles", id="empty-roles"),
        pytest.param(lambda a: jwt.encode(claims(roles="clinician"), SECRET, algorithm="HS256"),
                     "unknown roles", id="roles-not-a-list"),
        pytest.param(lambda a: jwt.encode(claims(roles=None), SECRET, algorithm="HS256"),
                     "unknown roles", id="no-roles"),
        pytest.param(lambda a: jwt.encode(claims(org=None), SECRET, algorithm="HS256"),
                     "unknown organisation", id="no-org"),
        pytest.param(lambda a: jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
                     "not valid", id="missing-exp"),
        pytest.param(lambda a: jwt.encode(claims(sub=None), SECRET, algorithm="HS256"),
                     "not valid", id="missing-sub"),
        pytest.param(lambda a: jwt.encode(claims(aud="other"), SECRET, algorithm="HS256"),
                     "not valid", id="wrong-audience"),
        pytest.param(lambda a: jwt.encode(claims(exp=int(time.time()) - 5), SECRET,
                                          algorithm="HS256"), "expired", id="crafted-expired"),
        pytest.param(lambda a: jwt.encode(claims(), SECRET, algorithm="HS512"), "not valid",
                     id="other-algorithm"),
        pytest.param(lambda a: jwt.encode(claims(), "", algorithm="none"), "not valid",
                     id="alg-none"),
        pytest.param(lambda a: "not-a-jwt", "not valid", id="garbage"),
        pytest.param(lambda a: "", "not valid", id="empty"),
    ],
)
def test_verify_rejects(authority: TokenAuthority, given_token: Any,
                        expected_message: str) -> None:
    token = given_token(authority)
    with pytest.raises(NotAuthenticated, match=expected_message):
        authority.verify(token)


@pytest.mark.parametrize(
    ("given_minted_seconds_ago", "expected_valid"),
    [
        pytest.param(0, True, id="fresh"),
        pytest.param(50, True, id="within-lifetime"),
        pytest.param(61, False, id="just-past-lifetime"),
        pytest.param(3600, False, id="long-past-lifetime"),
    ],
)
def test_a_token_expires_once_its_lifetime_has_passed(authority: TokenAuthority,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      given_minted_seconds_ago: int,
                                                      expected_valid: bool) -> None:
    minted_at = time.time() - given_minted_seconds_ago
    monkeypatch.setattr(auth_module, "time", SimpleNamespace(time=lambda: minted_at))
    token = authority.mint("trust", ["clinician"], lifetime_seconds=60)
    monkeypatch.undo()
    if expected_valid:
        assert authority.verify(token).org == "trust"
    else:
        with pytest.raises(NotAuthenticated, match="expired"):
            authority.verify(token)


def test_mint_sets_the_default_lifetime(authority: TokenAuthority) -> None:
    decoded = jwt.decode(authority.mint("trust", ["clinician"]), options={
        "verify_signature": False})
    assert decoded["exp"] - decoded["iat"] == 8 * 3600


def test_mint_honours_an_explicit_zero_lifetime(authority: TokenAuthority) -> None:
    decoded = jwt.decode(authority.mint("trust", ["clinician"], lifetime_seconds=0),
                         options={"verify_signature": False})
    assert decoded["exp"] - decoded["iat"] == 0
