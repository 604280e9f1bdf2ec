"""The consent service's HTTP API (port 8102): its routers (``routes``), one per resource,
over the adapters the composition root builds."""

from fastapi import FastAPI

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
from services.consent.entrypoints.routes.consents import ConsentIn
from shared.http import add_routes, create_api
from shared.settings import PlatformSettings

__all__ = ["ConsentIn", "build_api", "create_app"]
"""``ConsentIn`` stays importable from here for the demo's tests."""

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
    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ConsentAdapters(settings))
