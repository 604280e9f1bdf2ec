"""A key store that does not answer is a 503 with Retry-After: in the services that ask the
consent service for keys it is the consent service (``consent-unavailable``); in the consent
service itself it is its own database (``unavailable``), as before the error mapping moved
into ``create_api``."""

from __future__ import annotations

from unittest.mock import MagicMock

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.consent.entrypoints.api import build_api as consent_api
from shared.crypto import KeyStoreUnavailable
from shared.http import CONSENT_UNAVAILABLE, DEPENDENCY_UNAVAILABLE, create_api


def _answer(app: FastAPI) -> tuple[int, str | None, dict[str, str]]:
    @app.get("/v1/key-store-gone")
    def gone() -> None:
        raise KeyStoreUnavailable("did not answer")

    response = TestClient(app).get("/v1/key-store-gone")
    return response.status_code, response.headers.get("retry-after"), response.json()


def test_in_a_service_that_asks_consent_it_is_the_consent_service_that_is_unavailable() -> None:
    app = create_api("screening", title="t", description="d", readiness=[])
    assert _answer(app) == (503, "5", {"error": "consent-unavailable",
                                       "message": CONSENT_UNAVAILABLE})


def test_in_the_consent_service_it_is_its_own_database() -> None:
    assert _answer(consent_api(MagicMock())) == (503, "5", {"error": "unavailable",
                                                            "message": DEPENDENCY_UNAVAILABLE})
