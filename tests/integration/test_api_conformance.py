"""Schemathesis over the four APIs' OpenAPI documents: no request, valid or not, gets a 5xx or a
status its operation does not document.

Every operation is driven in process (``schemathesis.openapi.from_asgi``) with cases Hypothesis
draws from its schema, valid (positive) and invalid (negative) alike, each sent with a valid
token of a caller the access matrix (``tests/access/*.csv``) lets use that endpoint. The
databases are SQLite files; consent is also served on a loopback port, since screening and
mentoring ask it over HTTP. Each response is judged by schemathesis's own checks,
``not_a_server_error`` and ``status_code_conformance``: every case is counted, and the test
fails on the first 5xx or undocumented status of any operation, naming each. A line per API
(operations, cases, 5xx, undocumented) is printed (``-s``). Examples per operation: 15 in
``make test``, 200 in ``make soak``; the seed is fixed (``derandomize``).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi.checks import UndefinedStatusCode
from schemathesis.specs.openapi.checks import status_code_conformance

from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from services.mentoring.entrypoints.api import create_app as mentoring_app
from services.reporting.entrypoints.api import create_app as reporting_app
from services.screening.entrypoints.api import create_app as screening_app
from shared.http import ApiError, create_api
from tests.support.http import serving
from tests.support.scale import scale
from tests.support.services import issuing, settings_for
from tests.support.tokens import Tokens

pytestmark = [pytest.mark.kafka, pytest.mark.soak]

EXAMPLES: Final = scale(15, 200)
SERVICES: Final = ("consent", "mentoring", "reporting", "screening")
ACCESS_DIR: Final = Path(__file__).resolve().parents[1] / "access"
CONFIG: Final = schemathesis.Config.from_dict({"max-stream-events": 1})
"""An event stream (``/v1/releases/stream``) is read up to its first event, not to its end."""
CHECKS: Final = [not_a_server_error, status_code_conformance]
HYPOTHESIS: Final = settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
    print_blob=False)
"""Reproducible (a fixed seed), no deadline and no health checks on a loaded machine; no
shrinking: every case is tallied, not the first failure minimised."""


def callers(service: str) -> dict[str, tuple[str, str]]:
    """Per endpoint, the first caller and organisation the access matrix lets use it."""
    allowed: dict[str, tuple[str, str]] = {}
    with (ACCESS_DIR / f"{service}.csv").open(newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    for row in csv.DictReader(lines):
        if row["expected"].strip().startswith("2"):
            allowed.setdefault(row["endpoint"].strip(),
                               (row["caller"].strip(), row["caller_org"].strip()))
    return allowed


@dataclass
class Tally:
    """What one API's run found."""

    operations: int = 0
    cases: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    undocumented: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)

    def summary(self, service: str) -> str:
        return (f"{service}: {self.operations} operations, {sum(self.cases.values())} cases, "
                f"{sum(self.server_errors.values())} 5xx, "
                f"{sum(self.undocumented.values())} undocumented")

    def problems(self) -> list[str]:
        found = [*(f"{op}: {status} (5xx) x{n}: {self.examples[(op, status)]}"
                   for (op, status), n in sorted(self.server_errors.items())),
                 *(f"{op}: {status} undocumented x{n}: {self.examples[(op, status)]}"
                   for (op, status), n in sorted(self.undocumented.items()))]
        return found


def record(tally: Tally, label: str, case: schemathesis.Case, headers: dict[str, str]) -> None:
    """Send one case and tally what schemathesis's checks say of its response."""
    tally.cases[label] += 1
    try:
        response = case.call(headers=headers)
    except Exception as exc:  # the app raised through the in-process transport: a 500
        tally.server_errors[(label, "raised")] += 1
        tally.examples.setdefault((label, "raised"), f"{type(exc).__name__} at "
                                  f"{case.formatted_path}")
        return
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        status = str(response.status_code)
        for failure in group.exceptions:
            kind = (tally.undocumented if isinstance(failure, UndefinedStatusCode)
                    else tally.server_errors)
            kind[(label, status)] += 1
        tally.examples.setdefault((label, status), f"{case.formatted_path}: "
                                                   f"{response.text[:300]}")


def drive(tally: Tally, label: str, cases: st.SearchStrategy[schemathesis.Case],
          headers: dict[str, str]) -> None:
    """Send the cases Hypothesis draws for one operation."""

    @HYPOTHESIS
    @given(case=cases)
    def run(case: schemathesis.Case) -> None:
        record(tally, label, case, headers)

    run()


def fuzz(service: str, app: FastAPI, tokens: Tokens) -> Tally:
    """Every operation of ``app``'s document, positive and negative cases."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    allowed = callers(service)
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        assert label in allowed, f"{service}: the access matrix admits no one to {label}"
        drive(tally, label, st.one_of([
            operation.as_strategy(generation_mode=mode)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]),
            tokens.headers(*allowed[label]))
        tally.operations += 1
    return tally


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
         ) -> Iterator[tuple[dict[str, Callable[[], FastAPI]], Tokens]]:
    """Builders of the four APIs on migrated SQLite files, consent also served on a port, and
    the tokens of every caller."""
    var_dir = tmp_path_factory.mktemp("conformance")
    with pytest.MonkeyPatch.context() as patch:
        databases = {s: f"sqlite:///{var_dir / f'{s}.db'}" for s in SERVICES}
        base = settings_for(patch, var_dir, databases, kafka_bootstrap=kafka_bootstrap)
        consent = ConsentAdapters(base)
        consent_app = consent_api(consent)
        try:
            with issuing(base) as issued, serving(consent_app) as consent_url:
                served = issued.model_copy(update={"consent_url": consent_url})
                yield {"consent": lambda: consent_app,
                       "mentoring": lambda: mentoring_app(served),
                       "reporting": lambda: reporting_app(served),
                       "screening": lambda: screening_app(served)}, Tokens(base)
        finally:
            consent.database.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_no_case_gets_a_server_error_or_an_undocumented_status(
        apps: tuple[dict[str, Callable[[], FastAPI]], Tokens], service: str) -> None:
    builders, tokens = apps
    tally = fuzz(service, builders[service](), tokens)
    print(tally.summary(service))
    assert tally.operations > 0
    assert all(tally.cases[label] > 0 for label in tally.cases)
    assert len(tally.cases) == tally.operations, "an operation had no case"
    assert not tally.problems(), f"{tally.summary(service)}:\n" + "\n".join(tally.problems())


def test_the_run_catches_what_it_looks_for() -> None:
    """A probe API with a route that fails and one that answers an undocumented status: the
    same run counts both, so a clean run means something."""
    probe = create_api("probe-conformance", title="probe", description="fails on purpose")

    @probe.get("/v1/fails")
    def fails(limit: int = 1) -> dict[str, int]:
        if limit > 3:
            raise RuntimeError("a bug")
        return {"limit": limit}

    @probe.get("/v1/teapot")
    def teapot() -> None:
        raise ApiError(418, "teapot", "not documented")

    tally = Tally()
    schema = schemathesis.openapi.from_asgi("/openapi.json", probe, config=CONFIG)
    for result in schema.get_all_operations():
        operation = result.ok()
        drive(tally, operation.label, operation.as_strategy(), {})
    assert tally.undocumented[("GET /v1/teapot", "418")] > 0
    assert tally.server_errors[("GET /v1/fails", "raised")] > 0
