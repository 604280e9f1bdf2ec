"""Building services against test databases, with development tokens.

A test holds the development issuer's key from its own var/ folder (tests may; services may
not): ``bearer`` mints people's tokens with it, ``service_bearer`` a service's, and
``issuing`` serves the issuer so that services built in the test obtain their own tokens by
the client-credentials grant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import select

from ops.migrations import migrate
from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.api import build_api as consent_api
from shared.events.envelope import CloudEvent
from shared.issuer import create_app as issuer_app
from shared.issuer import development_issuer
from shared.kafka.consumer import EventApplier, InboundRecord
from shared.kafka.topics import events_topic
from shared.settings import PlatformSettings
from tests.support.http import serving


def settings_for(monkeypatch: pytest.MonkeyPatch, var_dir: Path,
                 databases: dict[str, str], **overrides: object) -> PlatformSettings:
    """Platform settings using ``databases`` (migrated here) and a private var/ folder."""
    for service, url in databases.items():
        monkeypatch.setenv(f"PEERLINK_{service.upper()}_DATABASE_URL", url)
        migrate(service, url)
    return PlatformSettings(var_dir=var_dir, **overrides)  # type: ignore[arg-type]


SERVICE: Final = "service"


def bearer(settings: PlatformSettings, org: str, *roles: str) -> dict[str, str]:
    """An Authorization header for a person of ``org`` with ``roles``; with ``org`` "service",
    the own token of the service ``roles[0]`` names (``bearer(s, "service", "mentoring")``),
    so that a table of callers can hold services too."""
    if org == SERVICE:
        return service_bearer(settings, *roles)
    return {"Authorization": f"Bearer {development_issuer(settings).mint(org, list(roles))}"}


def service_bearer(settings: PlatformSettings, service: str) -> dict[str, str]:
    """An Authorization header with ``service``'s own token (as the issuer would give it)."""
    return {"Authorization": f"Bearer {development_issuer(settings).mint_service(service)}"}


@contextmanager
def issuing(settings: PlatformSettings) -> Iterator[PlatformSettings]:
    """The development issuer served on a loopback port; yields ``settings`` pointing services
    at its token endpoint."""
    with serving(issuer_app(settings)) as url:
        yield settings.model_copy(update={"token_url": f"{url}/oauth/token"})


def relay_consent_events(consent: ConsentAdapters, applier: EventApplier,
                         after_seq: int) -> int:
    """Apply to ``applier`` what consent's outbox holds for ``consent.events`` after
    ``after_seq``, as the service's worker would receive it; returns the last seq seen."""
    outbox = consent.database.metadata.tables["outbox"]
    with consent.database.read() as session:
        rows = session.execute(select(outbox).where(outbox.c.seq > after_seq)
                               .order_by(outbox.c.seq)).all()
    for row in rows:
        after_seq = row.seq
        if row.topic == events_topic("consent"):
            event = CloudEvent.from_bytes(row.payload)
            applier.process(InboundRecord(row.topic, 0, row.seq,
                                          (event.subject or "").encode(), row.payload))
    return after_seq


@contextmanager
def consent_beside(service: str, settings: PlatformSettings, var_dir: Path
                   ) -> Iterator[tuple[ConsentAdapters, str, PlatformSettings]]:
    """The consent service served on a loopback port beside ``service`` under test, with the
    development issuer: both on migrated SQLite files under ``var_dir``. Yields the consent
    service, its URL and the settings to build ``service`` with."""
    databases = {s: f"sqlite:///{var_dir / f'{service}-matrix-{s}.db'}"
                 for s in ("consent", service)}
    with pytest.MonkeyPatch.context() as patch:
        for name, url in databases.items():
            migrate(name, url)
            patch.setenv(f"PEERLINK_{name.upper()}_DATABASE_URL", url)
        consent = ConsentAdapters(settings)
        try:
            with issuing(settings) as issued, serving(consent_api(consent)) as consent_url:
                yield consent, consent_url, issued.model_copy(update={"consent_url": consent_url})
        finally:
            consent.database.dispose()


def approve_erasure(client: httpx.Client, settings: PlatformSettings, erasure_request_id: str,
                    org: str, *, base_url: str = "", decision: str = "approve",
                    reason: str | None = None, retained: list[str] | None = None
                    ) -> dict[str, Any]:
    """``org``'s DPO decides an erasure request through the consent API (``base_url`` when
    ``client`` is not bound to it); returns the request as the DPO then sees it."""
    body: dict[str, Any] = {"decision": decision}
    if reason is not None:
        body["reason"] = reason
    if retained is not None:
        body["retained"] = retained
    response = client.post(f"{base_url}/v1/erasure-requests/{erasure_request_id}/decision",
                           json=body, headers=bearer(settings, org, "dpo"))
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view
