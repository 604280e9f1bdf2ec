"""The access matrix: every endpoint of every service, against every caller, organisation,
relationship state and token state, with the expected status read from ``tests/access/*.csv``.

``test_table_is_complete`` enumerates each service's routes (internal and unlisted ones
included) and fails on any combination the table lacks or holds twice; ``test_access`` runs
every row against the real API on SQLite, each row in a person of its own who is put in the
row's relationship state through the public consent API. See ``tests/access/README.md``.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from ops.migrations import migrate
from services.consent.entrypoints.api import create_app as consent_app
from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.api import build_api as reporting_api
from shared.auth import ON_BEHALF_OF
from shared.settings import PlatformSettings
from tests.support.consent import RunningConsent, running_consent
from tests.support.http import serving
from tests.support.mentoring_matrix import MentoringHarness
from tests.support.screening_matrix import ScreeningHarness
from tests.support.tokens import PEOPLE_ROLES, SERVICES, TOKEN_STATES, Tokens

ACCESS_DIR: Final = Path(__file__).resolve().parents[1] / "access"
COLUMNS: Final = ("endpoint", "caller", "caller_org", "relationship", "expected", "why")
ORGS: Final = ("trust", "partner-a", "partner-b")
STATES: Final = ("own", "none", "registered", "shared", "withdrawn")
NOT_APPLICABLE: Final = "n/a"
TRUST_STATES: Final = ("own", "none", "registered")
"""Partner-sharing names DVA partners only, so the Trust is never shared to."""
SELF_REFERRED: Final = "self-referred"
"""Mentoring only: a partner referred the person it holds to its own intake."""
UNMATRIXED: Final = frozenset({"/healthz", "/readyz", "/metrics"})
SERVICE_NAMES: Final = ("consent", "reporting", "screening", "mentoring")


@dataclass(frozen=True)
class Row:
    """One cell of the matrix."""

    service: str
    endpoint: str
    caller: str
    caller_org: str
    relationship: str
    expected: int
    why: str
    where: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.endpoint, self.caller, self.caller_org, self.relationship)

    @property
    def id(self) -> str:
        return "|".join((self.service, self.endpoint, self.caller_org, self.caller,
                         self.relationship))

    @property
    def method(self) -> str:
        return self.endpoint.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.endpoint.split(" ", 1)[1]


def load_table(path: Path) -> list[Row]:
    """A service's rows; lines starting with ``#`` are comments."""
    with path.open(newline="") as handle:
        numbered = [(n, line) for n, line in enumerate(handle, 1)
                    if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader([line for _, line in numbered])
    missing = {"endpoint", "caller", "caller_org", "relationship", "expected"} - set(
        reader.fieldnames or ())
    assert not missing, f"{path.name}: missing columns {sorted(missing)}"
    unknown = set(reader.fieldnames or ()) - set(COLUMNS)
    assert not unknown, f"{path.name}: unknown columns {sorted(unknown)}"
    rows = []
    for (number, _), record in zip(numbered[1:], reader, strict=True):
        where = f"{path.name}:{number}"
        try:
            expected = int(record["expected"])
        except ValueError:
            raise AssertionError(f"{where}: expected is not an HTTP status") from None
        rows.append(Row(path.stem, record["endpoint"].strip(), record["caller"].strip(),
                        record["caller_org"].strip(), record["relationship"].strip(),
                        expected, (record.get("why") or "").strip(), where))
    return rows


TABLES: Final = SERVICE_NAMES
"""Every service's table, ``tests/access/<service>.csv``."""


def all_rows() -> list[Row]:
    return [row for name in TABLES for row in load_table(ACCESS_DIR / f"{name}.csv")]


ROWS: Final = all_rows()


# --- what the table must cover ------------------------------------------------------------


def endpoints(app: FastAPI) -> list[str]:
    """Every ``METHOD /path`` the app serves that the matrix covers: internal and unlisted
    (``include_in_schema=False``) routes too; not health, readiness, metrics, the dashboard's
    static files or the API docs."""
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    found = []
    route: BaseRoute
    for route in app.routes:
        path = getattr(route, "path", None)
        if path is None or path in UNMATRIXED or path in docs or path.startswith("/static/"):
            continue
        assert isinstance(route, APIRoute), f"{path}: an unexpected kind of route"
        methods = (route.methods or set()) - {"HEAD", "OPTIONS"}
        found += [f"{method} {path}" for method in sorted(methods)]
    return found


def relationships(service: str, org: str) -> tuple[str, ...]:
    """The relationship states that apply to a caller of ``org`` at ``service``."""
    if service == "reporting":
        return (NOT_APPLICABLE,)  # de-identified figures: no person in any request
    if org == "trust":
        return TRUST_STATES
    return (*STATES, SELF_REFERRED) if service == "mentoring" else STATES


def callers(endpoint: str) -> tuple[str, ...]:
    """People's roles and token states everywhere, plus services on internal endpoints."""
    internal = endpoint.split(" ", 1)[1].startswith("/internal/")
    services = tuple(f"service:{name}" for name in SERVICES) if internal else ()
    return (*PEOPLE_ROLES, *TOKEN_STATES, *services)


def required(service: str, app: FastAPI) -> set[tuple[str, str, str, str]]:
    return {(endpoint, caller, org, state) for endpoint in endpoints(app)
            for caller in callers(endpoint) for org in ORGS
            for state in relationships(service, org)}


def service_app(service: str, settings: PlatformSettings) -> FastAPI:
    if service == "consent":
        return consent_app(settings)
    if service == "reporting":
        return reporting_api(ReportingAdapters(settings))
    if service == "screening":
        from services.screening.entrypoints.api import create_app as screening_app
        return screening_app(settings)
    from services.mentoring.entrypoints.api import create_app as mentoring_app
    return mentoring_app(settings)


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("matrix")


@pytest.fixture(scope="module")
def settings(var_dir: Path) -> Iterator[PlatformSettings]:
    with pytest.MonkeyPatch.context() as patch:
        for service in SERVICE_NAMES:
            patch.delenv(f"PEERLINK_{service.upper()}_DATABASE_URL", raising=False)
        yield PlatformSettings(var_dir=var_dir)


@pytest.mark.parametrize("service", TABLES)
def test_table_is_complete(service: str, settings: PlatformSettings) -> None:
    rows = [row for row in ROWS if row.service == service]
    held = Counter(row.key for row in rows)
    needed = required(service, service_app(service, settings))
    missing = sorted(needed - set(held))
    extra = sorted(set(held) - needed)
    twice = sorted(key for key, count in held.items() if count > 1)
    assert not missing, f"{service}.csv lacks {len(missing)} cells, e.g. {missing[:5]}"
    assert not extra, f"{service}.csv has cells no route needs, e.g. {extra[:5]}"
    assert not twice, f"{service}.csv holds cells twice, e.g. {twice[:5]}"


def test_table_values_are_known() -> None:
    for row in ROWS:
        assert row.caller in (*PEOPLE_ROLES, *TOKEN_STATES,
                              *(f"service:{s}" for s in SERVICES)), row.where
        assert row.caller_org in ORGS, row.where
        assert row.relationship in (*STATES, SELF_REFERRED, NOT_APPLICABLE), row.where
        assert 100 <= row.expected <= 599, row.where


# --- running the rows ---------------------------------------------------------------------


class Harness(Protocol):
    def run(self, row: Row) -> None: ...


def nhs_numbers(start: int) -> Iterator[str]:
    """Distinct valid NHS numbers (Modulus 11) from a nine-digit start."""
    for body in itertools.count(start):
        digits = f"{body:09d}"
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check == 10:
            continue
        yield digits + str(0 if check == 11 else check)


@dataclass
class Person:
    """A row's person: who holds their record, and what the row's setup left behind that
    only the holder may see."""

    nhs_number: str
    holder: str
    subject_id: str = ""
    withdrawal_id: str | None = None
    erasure_request_id: str | None = None
    access_request_id: str | None = None
    reconciliation_id: str | None = None
    markers: list[str] = field(default_factory=list)


REGISTRAR: Final = {"nhs-trust": "clinician", "dva-partner": "partner-staff"}
NEEDS_WITHDRAWAL: Final = frozenset({"GET /v1/withdrawals/{withdrawal_id}",
                                     "GET /v1/withdrawals"})
NEEDS_HOLDER_CONSENT: Final = frozenset({"GET /v1/subjects/{subject_id}/consents",
                                         "GET /internal/v1/subjects/{subject_id}/consents",
                                         "GET /v1/audit",
                                         "GET /v1/subjects/{subject_id}/export"})
NEEDS_ERASURE_REQUEST: Final = frozenset({
    "GET /v1/erasure-requests", "GET /v1/erasure-requests/{erasure_request_id}",
    "POST /v1/erasure-requests/{erasure_request_id}/decision",
    "POST /v1/erasure-requests/{erasure_request_id}/extension"})
"""Endpoints about an erasure request: the holder files one for the row's person."""
NEEDS_ACCESS_REQUEST: Final = frozenset({
    "GET /v1/subject-access-requests", "GET /v1/subject-access-requests/{request_id}",
    "POST /v1/subject-access-requests/{request_id}/complete"})
"""Endpoints about a subject access request: the holder files one for the row's person."""
NEEDS_RECONCILIATION: Final = frozenset({
    "GET /v1/identity-reconciliations",
    "POST /v1/identity-reconciliations/{reconciliation_id}/resolve"})
"""Endpoints about an NHS-number link: the holder links another number to the row's person."""
SHOWS_THE_HOLDERS: Final = (NEEDS_HOLDER_CONSENT | NEEDS_WITHDRAWAL | NEEDS_ERASURE_REQUEST
                            | NEEDS_ACCESS_REQUEST | NEEDS_RECONCILIATION)
"""Endpoints whose answer to the holder shows the last of the row's markers."""


ON_BEHALF_OF_REFERRER: Final = frozenset({"POST /internal/v1/subjects/{subject_id}/relationships",
                                          "PUT /internal/v1/subjects/{subject_id}/safe-contact"})
"""Internal endpoints a service calls only for a person: its rows send the service's token on
behalf of the holder's registrar (the referring person)."""
SAFE_CONTACT: Final = {"phone": "07700 900000", "times": "weekday mornings",
                       "may_leave_message": False}


def check_status(row: Row, response: httpx.Response) -> None:
    """The row's status, as the table says."""
    if response.status_code == row.expected:
        return
    raise AssertionError(f"{row.where}: {row.id} answered {response.status_code}, the table "
                         f"says {row.expected} ({row.why}): {response.text[:300]}")


class ConsentHarness:
    """Rows of one consent endpoint, on a consent service of their own."""

    def __init__(self, consent: RunningConsent, tokens: Tokens, start: int) -> None:
        self.service = consent.adapters
        self.client = consent.client
        self.tokens = tokens
        self.numbers = nhs_numbers(start)

    def _token(self, org: str, subject: str | None = None) -> str:
        return self.tokens.person(org, REGISTRAR[self.tokens.kind(org)], subject=subject)

    def _as(self, org: str, subject: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token(org, subject)}"}

    def _referral_by(self, holder: str) -> dict[str, str]:
        """Mentoring's token, on behalf of a referrer at ``holder``."""
        return {"Authorization": f"Bearer {self.tokens.service('mentoring')}",
                ON_BEHALF_OF: self._token(holder)}

    def _ok(self, response: httpx.Response, status: int, what: str) -> dict[str, Any]:
        assert response.status_code == status, f"setup: {what}: {response.text}"
        body: dict[str, Any] = response.json()
        return body

    def prepare(self, row: Row) -> Person:
        """A fresh person in the row's relationship state, made through the API."""
        org, state = row.caller_org, row.relationship
        holder = org if state == "own" else ("partner-a" if org == "trust" else "trust")
        person = Person(next(self.numbers), holder)
        marker = f"holder-{uuid.uuid4().hex}"
        person.markers.append(marker)
        holder_headers = self._as(holder, subject=marker)
        person.subject_id = self._ok(self.client.post(
            "/v1/subjects", json={"nhs_number": person.nhs_number}, headers=holder_headers),
            201, "the holder registers")["subject_id"]
        subject = f"/v1/subjects/{person.subject_id}"
        if state == "registered":
            self._ok(self.client.post("/v1/subjects", json={"nhs_number": person.nhs_number},
                                      headers=self._as(org)), 201, "the caller registers")
        if state in ("shared", "withdrawn"):
            self._ok(self.client.post(f"{subject}/consents", headers=holder_headers, json={
                "purpose": "partner-sharing", "method": "verbal", "recorded_by": marker,
                "recipients": [org]}), 201, "the holder shares with the caller")
        elif row.endpoint in NEEDS_HOLDER_CONSENT:
            self._ok(self.client.post(f"{subject}/consents", headers=holder_headers, json={
                "purpose": "evaluation", "method": "verbal", "recorded_by": marker}),
                201, "the holder records a consent of its own")
        if state in ("shared", "withdrawn"):
            self._ok(self.client.post(f"/internal{subject}/relationships", json={"org": org},
                                      headers=self._referral_by(holder)),
                     201, "a referral to the caller")
        if state == "withdrawn":
            person.withdrawal_id = self._ok(self.client.post(
                f"{subject}/withdrawals", headers=holder_headers, json={
                    "purposes": ["partner-sharing"], "recipients": [org], "method": "verbal"}),
                202, "the holder stops sharing")["withdrawal_id"]
        if row.endpoint in NEEDS_WITHDRAWAL and person.withdrawal_id is None:
            person.withdrawal_id = self._ok(self.client.post(
                f"{subject}/withdrawals", headers=holder_headers,
                json={"purposes": ["evaluation"], "method": "verbal"}),
                202, "the holder withdraws")["withdrawal_id"]
        if person.withdrawal_id:
            person.markers.append(person.withdrawal_id)
        if row.endpoint in NEEDS_ERASURE_REQUEST:
            person.erasure_request_id = self._ok(self.client.post(
                "/v1/erasure-requests", headers=holder_headers, json={
                    "subject_id": person.subject_id, "method": "verbal",
                    "recorded_by": marker}), 202, "the holder files an erasure request"
            )["erasure_request_id"]
            person.markers.append(person.erasure_request_id)
        if row.endpoint in NEEDS_ACCESS_REQUEST:
            person.access_request_id = self._ok(self.client.post(
                "/v1/subject-access-requests", headers=holder_headers,
                json={"subject_id": person.subject_id}), 201,
                "the holder files a subject access request")["request_id"]
            person.markers.append(person.access_request_id)
        if row.endpoint in NEEDS_RECONCILIATION:
            self._ok(self.client.post(f"{subject}/nhs-number", headers=holder_headers,
                                      json={"nhs_number": next(self.numbers)}),
                     200, "the holder links another NHS number")
            dpo = {"Authorization": f"Bearer {self.tokens.person(holder, 'dpo')}"}
            [waiting] = [r for r in self._ok(
                self.client.get("/v1/identity-reconciliations", headers=dpo), 200,
                "the holder's DPO lists it")["identity_reconciliations"]
                if r["subject_id"] == person.subject_id]
            person.reconciliation_id = waiting["reconciliation_id"]
            person.markers.append(waiting["reconciliation_id"])
        return person

    def request(self, row: Row, person: Person) -> httpx.Response:
        path = row.path.format(subject_id=person.subject_id,
                               withdrawal_id=person.withdrawal_id or "wd_" + "0" * 32,
                               erasure_request_id=person.erasure_request_id or "er_" + "0" * 32,
                               request_id=person.access_request_id or "sar_" + "0" * 32,
                               reconciliation_id=person.reconciliation_id or "rec_" + "0" * 32)
        headers = self.tokens.headers(row.caller, row.caller_org)
        if row.caller.startswith("service:") and row.endpoint in ON_BEHALF_OF_REFERRER:
            headers[ON_BEHALF_OF] = self._token(person.holder)
        bodies: dict[str, dict[str, Any]] = {
            "POST /v1/subjects": {"nhs_number": person.nhs_number},
            "POST /internal/v1/registrations": {"nhs_number": person.nhs_number},
            "POST /v1/subjects/{subject_id}/consents": {
                "purpose": "evaluation", "method": "verbal", "recorded_by": "matrix caller"},
            "POST /v1/subjects/{subject_id}/withdrawals": {
                "purposes": ["evaluation"], "method": "verbal"},
            "POST /internal/v1/audit": {
                "action": f"{row.caller.removeprefix('service:')}-matrix-read",
                "subject_id": person.subject_id},
            "POST /internal/v1/subjects/{subject_id}/relationships": {"org": row.caller_org},
            "POST /v1/subjects/{subject_id}/nhs-number": {"nhs_number": person.nhs_number},
            "PUT /v1/subjects/{subject_id}/safe-contact": SAFE_CONTACT,
            "PUT /internal/v1/subjects/{subject_id}/safe-contact": SAFE_CONTACT,
            "POST /v1/erasure-requests": {"subject_id": person.subject_id, "method": "verbal"},
            "POST /v1/erasure-requests/{erasure_request_id}/decision": {
                "decision": "refuse", "reason": "matrix decision"},
            "POST /v1/erasure-requests/{erasure_request_id}/extension": {
                "months": 1, "reason": "matrix extension"},
            "POST /v1/subject-access-requests": {"subject_id": person.subject_id},
            "POST /v1/identity-reconciliations/{reconciliation_id}/resolve": {
                "resolution": "reject", "reason": "matrix resolution"},
        }
        params: dict[str, str] | None = {
            "GET /v1/withdrawals": {"status": "pending"},
            "GET /v1/audit": {"subject_id": person.subject_id},
            "GET /internal/v1/subjects/{subject_id}/consents": {"org": row.caller_org},
        }.get(row.endpoint)
        response: httpx.Response = self.client.request(row.method, path,
                                                       json=bodies.get(row.endpoint),
                                                       params=params, headers=headers)
        return response

    def run(self, row: Row) -> None:
        person = self.prepare(row)
        response = self.request(row, person)
        check_status(row, response)
        if not response.is_success:
            return
        if row.caller_org != person.holder:
            leaked = [m for m in person.markers if m in response.text]
            assert not leaked, f"{row.where}: {row.id} shows the holder's records to another " \
                               f"organisation: {response.text[:300]}"
        elif row.endpoint in SHOWS_THE_HOLDERS and not row.caller.startswith("service:"):
            # the holder sees its own records, so the leak check above can see a leak
            assert person.markers[-1] in response.text, f"{row.where}: {response.text[:300]}"


class ReportingHarness:
    """Rows of the reporting API, served on loopback (the release stream never ends by
    itself, so it is read over a real connection and closed)."""

    def __init__(self, base_url: str, tokens: Tokens) -> None:
        self.client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=10)
        self.tokens = tokens

    def run(self, row: Row) -> None:
        token = self.tokens.token(row.caller, row.caller_org)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if row.endpoint == "POST /login":  # the token is pasted into the sign-in form
            response = self.client.post("/login", data={"token": token or ""})
        elif row.endpoint == "GET /v1/releases/stream":
            with self.client.stream("GET", row.path, headers=headers) as streamed:
                response = streamed
        else:
            response = self.client.request(row.method, row.path, headers=headers)
        check_status(row, response)


@pytest.fixture(scope="module")
def harnesses(settings: PlatformSettings, var_dir: Path
              ) -> Iterator[Callable[[Row], Harness]]:
    """One harness per consent endpoint (its own database, copied from one migrated
    template) and one for reporting, built when first needed."""
    tokens = Tokens(settings)
    built: dict[str, Harness] = {}
    cleanup = contextlib.ExitStack()
    template = var_dir / "consent-template.db"

    def consent(endpoint: str) -> Harness:
        if not template.exists():
            migrate("consent", f"sqlite:///{template}")
        database = var_dir / f"consent-{len(built)}.db"
        shutil.copyfile(template, database)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PEERLINK_CONSENT_DATABASE_URL", f"sqlite:///{database}")
            # no broker here: verification finds the heads unavailable at once, not after 10 s
            patch.setenv("PEERLINK_CONSENT_AUDIT_HEADS_READ_SECONDS", "0.2")
            running = cleanup.enter_context(running_consent(settings))
        return ConsentHarness(running, tokens, 100_000_000 + 1_000_000 * len(built))

    def reporting() -> Harness:
        database = var_dir / "reporting.db"
        migrate("reporting", f"sqlite:///{database}")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PEERLINK_REPORTING_DATABASE_URL", f"sqlite:///{database}")
            service = ReportingAdapters(settings)
        cleanup.callback(service.database.dispose)
        base_url = cleanup.enter_context(serving(reporting_api(service)))
        return ReportingHarness(base_url, tokens)

    def harness(row: Row) -> Harness:
        name = row.service if row.service != "consent" else f"consent {row.endpoint}"
        if name not in built:
            if row.service == "consent":
                built[name] = consent(row.endpoint)
            elif row.service == "reporting":
                built[name] = reporting()
            elif row.service == "screening":
                built[name] = cleanup.enter_context(
                    ScreeningHarness.running(settings, tokens, var_dir, check_status))
            elif row.service == "mentoring":
                built[name] = cleanup.enter_context(
                    MentoringHarness.running(settings, tokens, var_dir, check_status))
            else:
                pytest.fail(f"no harness runs {row.service}'s rows yet")
        return built[name]

    with cleanup:
        yield harness


@pytest.mark.parametrize("row", [pytest.param(row, id=row.id) for row in ROWS])
def test_access(row: Row, harnesses: Callable[[Row], Harness]) -> None:
    harnesses(row).run(row)
