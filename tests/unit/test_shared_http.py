"""The shared HTTP layer: auth errors, validation errors without echo, health and metrics."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.auth import Principal, TokenAuthority
from shared.http import ApiError, Authorizer, create_api
from shared.identity import normalise_nhs_number

with warnings.catch_warnings():  # starlette's notice about httpx is not ours to act on
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

SERVICE = "unit-http-probe"
SECRET = "unit-http-secret-" + "y" * 48
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


authority = TokenAuthority(SECRET, ORGS)
readiness = Readiness()
app = create_api(SERVICE, title="probe", description="a probe app", readiness=[readiness])
authorizer = Authorizer(authority)
Clinician = Annotated[Principal, Depends(authorizer.require("clinician"))]


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
        pytest.param({"Authorization": "Bearer " + TokenAuthority("another-secret-" + "z" * 48,
                                                                  ORGS).mint("trust",
                                                                             ["clinician"])},
                     "not valid", id="wrong-secret"),
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
        pytest.param(("service",), id="service"),
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
