"""The shared HTTP layer: auth errors, validation errors without echo, health and metrics."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Annotated, Any

import jwt
import pytest
from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.auth import (
    NotAuthenticated,
    NotPermitted,
    Principal,
    TokenIssuer,
    TokenVerifier,
    generate_signing_key,
)
from shared.http import ApiError, Authorizer, add_routes, create_api, holding_any
from shared.identity import normalise_nhs_number

with warnings.catch_warnings():  # starlette's notice about httpx is not ours to act on
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

SERVICE = "unit-http-probe"
ORGS = {"trust": "nhs-trust", "partner-a": "dva-partner"}
NHS_LIKE = "943 476 5918"  # NHS-number shaped, wrong check digit
DISTINCTIVE = "Zebediah-Quartermaine-7731"


class Item(BaseModel):
    """A request body with the kinds of rule real endpoints use."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=0)
    nhs_number: str
    label: str = Field(pattern=r"^[a-z-]+$")

    @field_validator("nhs_number")
    @classmethod
    def _nhs(cls, value: str) -> str:
        return normalise_nhs_number(value)


class Readiness:
    """A readiness check that can be switched to failing."""

    def __init__(self) -> None:
        self.failing = False

    def __call__(self) -> None:
        if self.failing:
            raise ConnectionError("database at 10.0.0.5 refused")


class Keys:
    """The issuer's public key set, as a verifier sees it."""

    def __init__(self, *issuers: TokenIssuer) -> None:
        self._keys = {k["kid"]: jwt.PyJWK(k) for i in issuers for k in i.jwks()["keys"]}

    def key(self, kid: str) -> Any:
        if kid not in self._keys:
            raise NotAuthenticated("the bearer token names an unknown signing key")
        return self._keys[kid]


authority = TokenIssuer(generate_signing_key(), ORGS)
readiness = Readiness()
app = create_api(SERVICE, title="probe", description="a probe app", readiness=[readiness])
authorizer = Authorizer(TokenVerifier(Keys(authority), ORGS))
Clinician = Annotated[Principal, Depends(authorizer.require("clinician"))]


@app.get("/for-people")
def for_people(caller: Annotated[Principal, Depends(authorizer.require(
        "clinician", "partner-staff", via=("screening",), services=("mentoring",)))]
               ) -> dict[str, Any]:
    return {"subject": caller.subject, "org": caller.org, "via": caller.via,
            "service": caller.service}


@app.get("/internal")
def internal(caller: Annotated[Principal, Depends(authorizer.require_service(
        "screening"))]) -> dict[str, Any]:
    return {"subject": caller.subject, "service": caller.service}


@app.get("/internal/for-people")
def internal_for_people(caller: Annotated[Principal, Depends(authorizer.require_service(
        "screening", on_behalf=True))]) -> dict[str, Any]:
    return {"subject": caller.subject, "org": caller.org, "via": caller.via,
            "service": caller.service}


@app.post("/items/{item_id}")
def create_item(item_id: int, item: Item, caller: Clinician) -> dict[str, Any]:
    return {"item_id": item_id, "count": item.count, "org": caller.org}


@app.get("/items/{item_id}")
def read_item(item_id: int, caller: Clinician) -> dict[str, Any]:
    return {"item_id": item_id, "org": caller.org}


@app.post("/items/{item_id}/sent")
def mark_sent(item_id: int, caller: Clinician) -> dict[str, Any]:
    raise ApiError(409, "already-sent", "the item was already sent", field="status")


@app.get("/teapot")
def teapot(caller: Clinician) -> dict[str, Any]:
    raise ApiError(418, "teapot", "no field here")


@pytest.fixture
def client() -> Iterator[TestClient]:
    readiness.failing = False
    with TestClient(app) as c:
        yield c
    readiness.failing = False


def bearer(org: str = "trust", roles: tuple[str, ...] = ("clinician",)) -> dict[str, str]:
    return {"Authorization": f"Bearer {authority.mint(org, list(roles))}"}


GOOD_BODY = {"count": 2, "nhs_number": "943 476 5919", "label": "north-cmht"}


@pytest.mark.parametrize(
    ("given_headers", "expected_message"),
    [
        pytest.param({}, "bearer token is required", id="no-header"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, "bearer token is required",
                     id="basic-scheme"),
        pytest.param({"Authorization": "Bearer"}, "bearer token is required",
                     id="bearer-without-token"),
        pytest.param({"Authorization": "Bearer not.a.token"}, "not valid", id="garbage-token"),
        pytest.param({"Authorization": "Bearer " + TokenIssuer(generate_signing_key(), ORGS)
                      .mint("trust", ["clinician"])}, "unknown signing key", id="wrong-key"),
        pytest.param({"Authorization": "Bearer " + authority.mint(
            "trust", ["clinician"], lifetime_seconds=13 * 3600)}, "lifetime over the maximum",
                     id="lifetime-over-the-maximum"),
        pytest.param({"Authorization": "Bearer " + TokenIssuer(
            generate_signing_key(), {**ORGS, "trust": "dva-partner"}).mint(
                "trust", ["partner-staff"])}, "unknown signing key",
                     id="other-issuer-other-kind"),
        pytest.param({"Authorization": "Bearer " + authority.mint(
            "trust", ["clinician"], lifetime_seconds=-10)}, "expired", id="expired"),
    ],
)
def test_missing_or_bad_token_is_401_with_a_challenge(client: TestClient,
                                                      given_headers: dict[str, str],
                                                      expected_message: str) -> None:
    response = client.post("/items/1", json=GOOD_BODY, headers=given_headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["error"] == "not-authenticated"
    assert expected_message in body["message"]


@pytest.mark.parametrize(
    "given_roles",
    [
        pytest.param(("safeguarding-lead",), id="safeguarding-lead"),
        pytest.param(("ops-viewer", "dpo"), id="two-other-roles"),
    ],
)
def test_wrong_role_is_403_naming_the_roles_needed(client: TestClient,
                                                   given_roles: tuple[str, ...]) -> None:
    response = client.post("/items/1", json=GOOD_BODY, headers=bearer(roles=given_roles))
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "forbidden"
    assert "clinician" in body["message"]
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize(
    ("given_org", "given_roles"),
    [
        pytest.param("trust", ("clinician",), id="clinician"),
        pytest.param("trust", ("safeguarding-lead", "clinician"), id="one-role-suffices"),
    ],
)
def test_valid_token_and_body_is_200(client: TestClient, given_org: str,
                                     given_roles: tuple[str, ...]) -> None:
    response = client.post("/items/5", json=GOOD_BODY, headers=bearer(given_org, given_roles))
    assert response.status_code == 200
    assert response.json() == {"item_id": 5, "count": 2, "org": given_org}


@pytest.mark.parametrize(
    ("given_body", "given_value", "expected_field"),
    [
        pytest.param({**GOOD_BODY, "nhs_number": NHS_LIKE}, NHS_LIKE, "nhs_number",
                     id="nhs-number-check-digit"),
        pytest.param({**GOOD_BODY, "nhs_number": "9434765918"}, "9434765918", "nhs_number",
                     id="nhs-number-unspaced"),
        pytest.param({**GOOD_BODY, "label": DISTINCTIVE}, DISTINCTIVE, "label",
                     id="pattern"),
        pytest.param({**GOOD_BODY, "count": DISTINCTIVE}, DISTINCTIVE, "count",
                     id="not-an-integer"),
        pytest.param({**GOOD_BODY, "count": 9434765918}, "9434765918", None,
                     id="valid-integer-not-echoed"),
        pytest.param({**GOOD_BODY, "count": -9434765918}, "9434765918", "count",
                     id="below-minimum"),
        pytest.param({"count": 1, "label": DISTINCTIVE}, DISTINCTIVE, "nhs_number",
                     id="missing-field"),
        pytest.param({**GOOD_BODY, "extra": DISTINCTIVE}, DISTINCTIVE, "extra",
                     id="extra-field"),
    ],
)
def test_validation_errors_name_the_field_and_never_echo_the_value(
        client: TestClient, given_body: dict[str, Any], given_value: str,
        expected_field: str | None) -> None:
    if expected_field is None:  # make another field invalid so the request fails
        given_body = {**given_body, "label": "UPPER"}
        expected_field = "label"
    response = client.post("/items/1", json=given_body, headers=bearer())
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation-failed"
    assert expected_field in [d["field"] for d in body["details"]]
    assert all(d["problem"] for d in body["details"])
    assert expected_field in body["message"]
    assert given_value not in response.text
    assert given_value.replace(" ", "") not in response.text.replace(" ", "")


@pytest.mark.parametrize(
    "given_content",
    [
        pytest.param(b'{"count": 2, "nhs_number": "9434765918"', id="truncated"),
        pytest.param(b"nhs_number=9434765918", id="not-json"),
        pytest.param(b'{"count": 2,, }', id="double-comma"),
    ],
)
def test_malformed_json_is_422_on_the_body(client: TestClient, given_content: bytes) -> None:
    response = client.post("/items/1", content=given_content,
                           headers={**bearer(), "Content-Type": "application/json"})
    assert response.status_code == 422
    body = response.json()
    assert body["details"] == [{"field": "body", "problem": "the body is not valid JSON"}]
    assert "9434765918" not in response.text


def test_invalid_path_parameter_names_it(client: TestClient) -> None:
    response = client.get(f"/items/{DISTINCTIVE}", headers=bearer())
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["details"]] == ["item_id"]
    assert DISTINCTIVE not in response.text


@pytest.mark.parametrize(
    ("given_path", "given_method", "expected_status", "expected_body"),
    [
        pytest.param("/items/3/sent", "POST", 409, {
            "error": "already-sent", "message": "the item was already sent",
            "details": [{"field": "status", "problem": "the item was already sent"}]},
            id="with-field"),
        pytest.param("/teapot", "GET", 418, {"error": "teapot", "message": "no field here"},
                     id="without-field"),
    ],
)
def test_api_error_gives_its_status_and_field(client: TestClient, given_path: str,
                                              given_method: str, expected_status: int,
                                              expected_body: dict[str, Any]) -> None:
    response = client.request(given_method, given_path, headers=bearer())
    assert response.status_code == expected_status
    assert response.json() == expected_body


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"] == "http-error"


def test_healthz_needs_no_token(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": SERVICE}


@pytest.mark.parametrize(
    ("given_failing", "expected_status", "expected_body"),
    [
        pytest.param(False, 200, {"status": "ready", "failing": []}, id="ready"),
        pytest.param(True, 503, {"status": "not-ready", "failing": ["Readiness"]},
                     id="check-raises"),
    ],
)
def test_readyz_reflects_the_checks(client: TestClient, given_failing: bool,
                                    expected_status: int, expected_body: dict[str, Any]) -> None:
    readiness.failing = given_failing
    response = client.get("/readyz")
    assert response.status_code == expected_status
    assert response.json()["status"] == expected_body["status"]
    assert len(response.json()["failing"]) == len(expected_body["failing"])
    assert "10.0.0.5" not in response.text  # the check's error text is not exposed


def test_readyz_names_a_failing_function_check() -> None:
    def database() -> None:
        raise OSError("down")

    def broker() -> None:
        return None

    probe = create_api("unit-http-readyz", title="r", description="r",
                       readiness=[database, broker])
    response = TestClient(probe).get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not-ready", "failing": ["database"]}


def metric_lines(client: TestClient) -> list[str]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return [line for line in response.text.splitlines()
            if line.startswith("peerlink_http_requests_total{") and SERVICE in line]


@pytest.mark.parametrize(
    ("given_method", "given_path", "given_body", "expected_route", "expected_status"),
    [
        pytest.param("GET", "/items/9434765919", None, "/items/{item_id}", "200",
                     id="get-template"),
        pytest.param("POST", "/items/9434765919", GOOD_BODY, "/items/{item_id}", "200",
                     id="post-template"),
        pytest.param("POST", "/items/9434765919/sent", None, "/items/{item_id}/sent", "409",
                     id="nested-template"),
        pytest.param("GET", "/no/such/9434765919", None, "unmatched", "404", id="unmatched"),
    ],
)
def test_metrics_label_requests_by_route_template(client: TestClient, given_method: str,
                                                  given_path: str, given_body: Any,
                                                  expected_route: str,
                                                  expected_status: str) -> None:
    def count() -> float:
        for line in metric_lines(client):
            if (f'route="{expected_route}"' in line and f'method="{given_method}"' in line
                    and f'status="{expected_status}"' in line):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    client.request(given_method, given_path, json=given_body, headers=bearer())
    assert count() == before + 1
    text = client.get("/metrics").text
    assert "9434765919" not in text
    assert "peerlink_http_requests_total" in text


def test_metrics_need_no_token(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "peerlink_http_request_duration_seconds" in response.text


def service(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {authority.mint_service(name)}"}


def person(org: str = "trust", *roles: str) -> str:
    return authority.mint(org, list(roles or ("clinician",)), subject="person-1")


@pytest.mark.parametrize("name", ["screening", "mentoring", "consent", "reporting"])
def test_a_service_on_its_own_may_not_take_a_persons_action(client: TestClient,
                                                            name: str) -> None:
    response = client.post("/items/1", json=GOOD_BODY, headers=service(name))
    assert response.status_code == 403
    assert "clinician" in response.json()["message"]


@pytest.mark.parametrize(
    ("given_headers", "expected_status", "expected"),
    [
        pytest.param(lambda: bearer(), 200,
                     {"subject": None, "org": "trust", "via": None, "service": None},
                     id="a-person-directly"),
        pytest.param(lambda: {**service("screening"), "Peerlink-On-Behalf-Of": person()}, 200,
                     {"subject": "person-1", "org": "trust", "via": "screening",
                      "service": None}, id="a-person-via-an-admitted-service"),
        pytest.param(lambda: {**service("mentoring"), "Peerlink-On-Behalf-Of": person()}, 403,
                     "the mentoring service may not act for a person here",
                     id="a-person-via-another-service"),
        pytest.param(lambda: {**service("screening"),
                              "Peerlink-On-Behalf-Of": person("trust", "ops-viewer")}, 403,
                     "roles", id="via-an-admitted-service-but-the-person-lacks-the-role"),
        pytest.param(lambda: service("mentoring"), 200,
                     {"subject": "svc-mentoring", "org": "peerlink-platform", "via": None,
                      "service": "mentoring"}, id="an-admitted-service-alone"),
        pytest.param(lambda: service("screening"), 403, "a service may not",
                     id="a-service-alone-admitted-only-for-people"),
        pytest.param(lambda: {**bearer(), "Peerlink-On-Behalf-Of": person()}, 403,
                     "only a service may act on behalf", id="a-person-claiming-to-act-for-one"),
        pytest.param(lambda: {**service("screening"),
                              "Peerlink-On-Behalf-Of": authority.mint_service("mentoring")},
                     401, "must be a person's", id="on-behalf-of-a-service"),
        pytest.param(lambda: {**service("screening"), "Peerlink-On-Behalf-Of": "garbage"},
                     401, "not valid", id="on-behalf-of-garbage"),
        pytest.param(lambda: {**service("screening"), "Peerlink-On-Behalf-Of": authority.mint(
            "trust", ["clinician"], lifetime_seconds=-5)}, 401, "expired",
                     id="on-behalf-of-an-expired-token"),
    ],
)
def test_who_may_act_for_people(client: TestClient, given_headers: Any, expected_status: int,
                                expected: Any) -> None:
    response = client.get("/for-people", headers=given_headers())
    assert response.status_code == expected_status, response.text
    if expected_status == 200:
        body = response.json()
        assert {**body, "subject": None if body["service"] is None and body["via"] is None
                else body["subject"]} == expected
    else:
        assert expected in response.json()["message"]


@pytest.mark.parametrize(
    ("path", "given_headers", "expected_status", "expected"),
    [
        pytest.param("/internal", lambda: service("screening"), 200, "svc-screening",
                     id="the-named-service"),
        pytest.param("/internal", lambda: service("reporting"), 403,
                     "the reporting service may not call", id="another-service"),
        pytest.param("/internal", lambda: bearer(), 403, "not people", id="a-clinician"),
        pytest.param("/internal", lambda: bearer("trust", ("dpo",)), 403, "not people",
                     id="a-dpo"),
        pytest.param("/internal", lambda: {}, 401, "bearer token is required", id="no-token"),
        pytest.param("/internal", lambda: {**service("screening"),
                                           "Peerlink-On-Behalf-Of": person()}, 403,
                     "does not act on behalf", id="on-behalf-where-not-admitted"),
        pytest.param("/internal/for-people", lambda: {**service("screening"),
                                                      "Peerlink-On-Behalf-Of": person()},
                     200, "person-1", id="on-behalf-where-admitted"),
        pytest.param("/internal/for-people", lambda: {**service("mentoring"),
                                                      "Peerlink-On-Behalf-Of": person()},
                     403, "the mentoring service may not", id="another-service-on-behalf"),
        pytest.param("/internal/for-people", lambda: bearer(), 403, "not people",
                     id="a-person-directly"),
    ],
)
def test_internal_endpoints_admit_only_the_named_services(
        client: TestClient, path: str, given_headers: Any, expected_status: int,
        expected: str) -> None:
    response = client.get(path, headers=given_headers())
    assert response.status_code == expected_status, response.text
    if expected_status == 200:
        assert response.json()["subject"] == expected
    else:
        assert expected in response.json()["message"]


def test_routes_added_from_routers_are_labelled_by_their_own_path() -> None:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/routed/{thing_id}")
    def routed(thing_id: int) -> dict[str, int]:
        return {"thing_id": thing_id}

    app = create_api("routed-service", title="t", description="d")
    add_routes(app, router)
    with TestClient(app) as routed_client:
        assert routed_client.get("/routed/4").json() == {"thing_id": 4}
        text = routed_client.get("/metrics").text
    assert 'route="/routed/{thing_id}"' in text
    assert "/routed/{thing_id}" in [getattr(route, "path", None) for route in app.routes]


def test_holding_any_names_the_roles_a_caller_lacks() -> None:
    caller = Principal(subject="s", org="trust", roles=frozenset({"nurse"}))

    assert holding_any(caller, ["nurse", "dpo"]) is caller
    with pytest.raises(NotPermitted, match="this action needs one of the roles: dpo, ops-viewer"):
        holding_any(caller, ["ops-viewer", "dpo"])
