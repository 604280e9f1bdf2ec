"""Every status an API can answer is in its OpenAPI document, with the error body it really
sends; a database that does not answer is a 503 the service recovers from by itself, and so is
a consent service that does not answer the services that depend on it.

The documents are read as served (``/openapi.json``). What each operation must list comes from
outside the code that documents it: whether it takes a token or input (the document itself),
and every status the access matrix (``tests/access/*.csv``) expects of it.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Final

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ops.broker import free_port
from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.mentoring.bootstrap import MentoringAdapters
from services.mentoring.entrypoints.api import build_api as mentoring_api
from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.api import build_api as reporting_api
from services.screening.adapters.tables import screenings
from services.screening.bootstrap import ScreeningAdapters
from services.screening.entrypoints.api import build_api as screening_api
from shared.db import Database
from shared.http import ErrorBody, create_api
from shared.settings import PlatformSettings
from tests.support.http import serving
from tests.support.services import bearer, issuing, settings_for

SERVICES: Final = ("consent", "mentoring", "reporting", "screening")
ACCESS_DIR: Final = Path(__file__).resolve().parents[1] / "access"
ERROR_REF: Final = "#/components/schemas/ErrorBody"
DATABASE_GONE: Final = {"error": "unavailable",
                        "message": "the database is not answering; try again shortly"}
INTERNALS: Final = ("sqlalchemy", "psycopg", "sqlite", "select", "insert", "operational",
                    "integrity", "postgres", "127.0.0.1")
"""What an error body must never show of the database behind it (lower case)."""
SCREENING: Final = {"nhs_number": "943 476 5919", "org": "trust", "team": "Ward 3",
                    "borough": "Camden", "gender": "female", "age_band": "25-34",
                    "asked_on": date.today().isoformat(), "asked_by_role": "nurse",
                    "training_level": 1, "private": True, "outcome": "declined"}
"""A routine enquiry the Trust's clinician records (for a person registered by NHS number)."""

Build = Callable[[PlatformSettings], tuple[FastAPI, Database]]


def _consent(settings: PlatformSettings) -> tuple[FastAPI, Database]:
    service = ConsentAdapters(settings)
    return consent_api(service), service.database


def _mentoring(settings: PlatformSettings) -> tuple[FastAPI, Database]:
    service = MentoringAdapters(settings)
    return mentoring_api(service), service.database


def _reporting(settings: PlatformSettings) -> tuple[FastAPI, Database]:
    service = ReportingAdapters(settings)
    return reporting_api(service), service.database


def _screening(settings: PlatformSettings) -> tuple[FastAPI, Database]:
    service = ScreeningAdapters(settings)
    return screening_api(service), service.database


BUILD: Final[dict[str, Build]] = {"consent": _consent, "mentoring": _mentoring,
                                  "reporting": _reporting, "screening": _screening}


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each API's OpenAPI document, as ``/openapi.json`` serves it."""
    var_dir = tmp_path_factory.mktemp("openapi")
    served = {}
    with pytest.MonkeyPatch.context() as patch:
        for service in SERVICES:
            patch.delenv(f"PEERLINK_{service.upper()}_DATABASE_URL", raising=False)
        settings = PlatformSettings(var_dir=var_dir)
        for service in SERVICES:
            app, database = BUILD[service](settings)
            response = TestClient(app).get("/openapi.json")
            database.dispose()
            assert response.status_code == 200
            served[service] = response.json()
    return served


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("METHOD /path", operation)`` for every operation of a document."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch"}:
                yield f"{method.upper()} {path}", operation


def matrix_statuses(service: str) -> dict[str, set[str]]:
    """Every status the access matrix expects, per endpoint."""
    expected: dict[str, set[str]] = {}
    with (ACCESS_DIR / f"{service}.csv").open(newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    for row in csv.DictReader(lines):
        expected.setdefault(row["endpoint"].strip(), set()).add(row["expected"].strip())
    return expected


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_lists_the_errors_every_route_can_give(
        documents: dict[str, dict[str, Any]], service: str) -> None:
    problems = []
    listed = list(operations(documents[service]))
    for label, operation in listed:
        responses = operation["responses"]
        needed = {"500", "503"}
        if operation.get("security"):
            needed |= {"401", "403"}
        else:
            problems.append(f"{label}: no bearer security: every API operation takes a token")
        if operation.get("parameters") or "requestBody" in operation:
            needed.add("422")
        problems += [f"{label}: {status} not listed" for status in sorted(needed - set(responses))]
    assert listed, f"{service}: no operations"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_status_has_the_error_body_and_a_503_says_when_to_retry(
        documents: dict[str, dict[str, Any]], service: str) -> None:
    document = documents[service]
    problems = []
    for label, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema != {"$ref": ERROR_REF}:
                problems.append(f"{label} {status}: schema {schema}, not ErrorBody")
            if not response.get("description"):
                problems.append(f"{label} {status}: no description")
        if "Retry-After" not in operation["responses"]["503"].get("headers", {}):
            problems.append(f"{label} 503: no Retry-After header")
    schemas = document["components"]["schemas"]
    assert not problems, "\n".join(problems)
    assert schemas["ErrorBody"]["required"] == ["error", "message"]
    assert schemas["ErrorBody"]["properties"]["details"]["items"] == {
        "$ref": "#/components/schemas/ErrorDetail"}
    assert "HTTPValidationError" not in schemas  # FastAPI's 422, which no handler returns


@pytest.mark.parametrize("service", SERVICES)
def test_every_status_the_access_matrix_expects_is_documented(
        documents: dict[str, dict[str, Any]], service: str) -> None:
    documented = dict(operations(documents[service]))
    expected = matrix_statuses(service)
    missing = [f"{endpoint}: {sorted(statuses - set(documented[endpoint]['responses']))}"
               for endpoint, statuses in sorted(expected.items())
               if endpoint in documented and statuses - set(documented[endpoint]["responses"])]
    assert set(documented) & set(expected), f"{service}: the matrix names no documented route"
    assert not missing, "undocumented statuses the matrix expects:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("service", "method", "path", "invalid", "allowed", "refused"),
    [
        pytest.param("consent", "GET", "/v1/audit", {"params": {"subject_id": "zqxnobody"}},
                     ("trust", "dpo"), ("trust", "clinician"), id="consent"),
        pytest.param("mentoring", "GET", "/v1/referrals", {"params": {"status": "zqxnever"}},
                     ("partner-a", "mentor-coordinator"), ("trust", "clinician"),
                     id="mentoring"),
        pytest.param("reporting", "GET", "/v1/prevalence", {"params": {"period": "zqxnever"}},
                     ("trust", "ops-viewer"), ("trust", "clinician"), id="reporting"),
        pytest.param("screening", "POST", "/v1/enquiries/due",
                     {"json": {"nhs_number": "zqxnobody"}}, ("trust", "clinician"),
                     ("trust", "ops-viewer"), id="screening"),
    ],
)
def test_the_errors_sent_are_the_documented_body_and_status(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service: str, method: str, path: str,
        invalid: dict[str, Any], allowed: tuple[str, str], refused: tuple[str, str]) -> None:
    settings = settings_for(monkeypatch, tmp_path,
                            {service: f"sqlite:///{tmp_path / f'{service}.db'}"})
    app, database = BUILD[service](settings)
    client = TestClient(app)
    try:
        documented = client.get("/openapi.json").json()["paths"][path][method.lower()]
        sent = {401: client.request(method, path, **invalid),
                403: client.request(method, path, headers=bearer(settings, *refused), **invalid),
                422: client.request(method, path, headers=bearer(settings, *allowed), **invalid)}
    finally:
        database.dispose()
    for status, response in sent.items():
        assert response.status_code == status, response.text
        assert str(status) in documented["responses"]
        body = response.json()
        assert set(body) <= set(ErrorBody.model_fields)
        assert ErrorBody.model_validate(body).message
        assert "zqx" not in response.text
    assert sent[401].headers["WWW-Authenticate"] == "Bearer"
    assert ErrorBody.model_validate(sent[422].json()).details


# --- a database that does not answer -------------------------------------------------------


@contextmanager
def database_gone(admin_url: str, url: str) -> Iterator[None]:
    """The database refuses every connection, and those open are terminated, until the block
    ends (then it accepts them again)."""
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
        yield
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("service", "method", "path", "caller", "body", "expected_ok"),
    [
        pytest.param("reporting", "GET", "/v1/prevalence", ("trust", "ops-viewer"), None, 200,
                     id="reporting-read"),
        pytest.param("consent", "POST", "/v1/subjects", ("trust", "clinician"),
                     {"nhs_number": "943 476 5919"}, 201, id="consent-write"),
    ],
)
def test_a_database_that_does_not_answer_is_a_503_until_it_is_back(
        postgres_admin_url: str, postgres_database: Callable[[], str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, service: str, method: str, path: str,
        caller: tuple[str, str], body: dict[str, Any] | None, expected_ok: int) -> None:
    url = postgres_database()
    settings = settings_for(monkeypatch, tmp_path, {service: url})
    app, database = BUILD[service](settings)
    client = TestClient(app)
    headers = bearer(settings, *caller)
    try:
        before = client.request(method, path, json=body, headers=headers)
        with database_gone(postgres_admin_url, url):
            during = client.request(method, path, json=body, headers=headers)
            ready = client.get("/readyz")
        after = client.request(method, path, json=body, headers=headers)
    finally:
        database.dispose()
    assert before.status_code == expected_ok, before.text
    assert (during.status_code, during.json()) == (503, DATABASE_GONE)
    assert int(during.headers["Retry-After"]) > 0
    assert not [word for word in INTERNALS if word in during.text.lower()]
    assert ready.status_code == 503
    assert after.status_code == expected_ok, after.text


def test_a_failing_statement_is_a_500_and_a_pool_timeout_a_503_neither_showing_sql() -> None:
    app = create_api("probe-database", title="probe", description="database errors")

    @app.get("/integrity")
    def integrity() -> None:
        raise IntegrityError("INSERT INTO subjects VALUES (%(nhs)s)", {"nhs": "9434765919"},
                             Exception("duplicate key value violates unique constraint"))

    @app.get("/pool")
    def pool() -> None:
        raise PoolTimeout("QueuePool limit of size 5 overflow 5 reached")

    client = TestClient(app, raise_server_exceptions=False)
    failed, waited = client.get("/integrity"), client.get("/pool")
    assert failed.status_code == 500
    assert failed.json()["error"] == "internal-error"
    assert (waited.status_code, waited.json()) == (503, DATABASE_GONE)
    assert waited.headers["Retry-After"].isdigit()
    for response in (failed, waited):
        assert "9434765919" not in response.text
        assert not [word for word in INTERNALS if word in response.text.lower()]


def test_a_missing_table_on_sqlite_is_a_500_and_a_locked_database_a_503(tmp_path: Path) -> None:
    """SQLite reports a missed migration as an OperationalError too: that is a server fault,
    not a reason for clients to retry; a locked database is."""
    engine = create_engine(f"sqlite:///{tmp_path / 'probe.db'}")
    app = create_api("probe-sqlite", title="probe", description="sqlite errors")

    @app.get("/missing-table")
    def missing() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT * FROM no_such_table"))

    @app.get("/locked")
    def locked() -> None:
        raise OperationalError("UPDATE outbox SET sent_at = ?", {},
                               sqlite3.OperationalError("database is locked"))

    client = TestClient(app, raise_server_exceptions=False)
    missing_table, busy = client.get("/missing-table"), client.get("/locked")
    assert missing_table.status_code == 500
    assert "Retry-After" not in missing_table.headers
    assert (busy.status_code, busy.json()) == (503, DATABASE_GONE)
    for response in (missing_table, busy):
        assert not [word for word in INTERNALS if word in response.text.lower()]
    engine.dispose()


# --- a consent service that does not answer ------------------------------------------------


def broken_consent() -> FastAPI:
    """A consent service that answers 500 to everything."""
    app = FastAPI()

    @app.api_route("/{anything:path}", methods=["GET", "POST", "PUT"])
    def broken(anything: str) -> JSONResponse:
        return JSONResponse(status_code=500, content={"error": "internal-error"})

    return app


@contextmanager
def consent_at(kind: str) -> Iterator[str]:
    """The URL of a consent service that is not listening, or that answers 500."""
    if kind == "not-listening":
        yield f"http://127.0.0.1:{free_port()}"
        return
    with serving(broken_consent()) as url:
        yield url


@pytest.mark.parametrize("kind", ["not-listening", "answers-500"])
def test_screening_answers_503_when_the_consent_service_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    settings = settings_for(monkeypatch, tmp_path,
                            {"screening": f"sqlite:///{tmp_path / 'screening.db'}"})
    with issuing(settings) as issued, consent_at(kind) as consent_url:
        service = ScreeningAdapters(issued.model_copy(update={"consent_url": consent_url}))
        try:
            response = TestClient(screening_api(service)).post(
                "/v1/screenings", json=SCREENING, headers=bearer(settings, "trust", "clinician"))
            with service.database.read() as session:
                recorded = session.execute(select(screenings)).all()
        finally:
            service.database.dispose()
    assert response.status_code == 503
    assert response.json()["error"] == "consent-unavailable"
    assert "consent service is unavailable" in response.json()["message"]
    assert int(response.headers["Retry-After"]) > 0
    assert recorded == []
