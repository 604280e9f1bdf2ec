"""The consent service's HTTP API (port 8102): its routers (``routes``), one per resource,
over the adapters the composition root builds."""

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.consent.bootstrap import ConsentAdapters
from services.consent.entrypoints.routes import (
    access_requests,
    audit,
    consents,
    data_keys,
    erasure_requests,
    identity,
    relationships,
    safe_contact,
    subjects,
    withdrawals,
)
from shared.crypto import KeyStoreUnavailable
from shared.http import DEPENDENCY_UNAVAILABLE, add_routes, create_api, unavailable
from shared.settings import PlatformSettings

log = logging.getLogger(__name__)
ROUTERS = (subjects, identity, safe_contact, consents, withdrawals, erasure_requests,
           access_requests, audit, relationships, data_keys)
"""The routers in the order the OpenAPI document lists their paths."""


def build_api(adapters: ConsentAdapters) -> FastAPI:
    """The consent API over ``adapters``."""
    app = create_api("consent", title="Peerlink consent service",
                     description="Subjects, consents per purpose, withdrawals that cascade "
                                 "through every service, erasure and the audit trail.",
                     readiness=[adapters.database.ping])
    add_routes(app, *(resource.router(adapters) for resource in ROUTERS))

    @app.exception_handler(KeyStoreUnavailable)
    async def _key_store(_request: Request, exc: KeyStoreUnavailable) -> JSONResponse:
        # here the key store is consent's own database, not the consent service of the others
        log.warning("the key store did not answer (%s)", type(exc).__name__)
        return unavailable(DEPENDENCY_UNAVAILABLE)

    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ConsentAdapters(settings))
