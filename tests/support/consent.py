"""The consent service under test, built one way for every integration test: its adapters over
the test's database (``ConsentAdapters``), and its API in process (a ``TestClient``) or served
on a loopback port; the database's connections are closed afterwards (a PostgreSQL server is
shared by the whole run)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api
from shared.settings import PlatformSettings
from tests.support.http import serving
from tests.support.services import settings_for


@dataclass(frozen=True)
class RunningConsent:
    """The consent service's adapters and a client of its API in process."""

    adapters: ConsentAdapters
    client: TestClient

    @property
    def settings(self) -> PlatformSettings:
        """The settings it was built with."""
        return self.adapters.settings

    @property
    def backend(self) -> str:
        """Its database's backend: sqlite or postgresql."""
        return make_url(self.adapters.database.url).get_backend_name()


@contextmanager
def running_consent(settings: PlatformSettings) -> Iterator[RunningConsent]:
    """The consent service for ``settings`` (its database migrated already), in process."""
    adapters = ConsentAdapters(settings)
    try:
        yield RunningConsent(adapters, TestClient(build_api(adapters)))
    finally:
        adapters.database.dispose()


@contextmanager
def consent_on(database_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch,
               **overrides: object) -> Iterator[RunningConsent]:
    """The consent service on ``database_url`` (migrated here), with a private var/ folder and
    settings ``overrides``, in process."""
    with running_consent(settings_for(monkeypatch, var_dir, {"consent": database_url},
                                      **overrides)) as consent:
        yield consent


@contextmanager
def served_consent(settings: PlatformSettings) -> Iterator[tuple[ConsentAdapters, str]]:
    """The consent service for ``settings`` served on a loopback port: its adapters and URL."""
    adapters = ConsentAdapters(settings)
    try:
        with serving(build_api(adapters)) as url:
            yield adapters, url
    finally:
        adapters.database.dispose()
