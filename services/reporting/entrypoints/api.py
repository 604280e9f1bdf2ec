"""The reporting service's HTTP API (port 8104): disclosure-controlled figures only, assembled
from one router per resource (``routes/``): the figures (JSON or CSV), dashboard sign-in, the
dashboard page and its static files, and the release stream."""

from fastapi import FastAPI

from services.reporting.bootstrap import ReportingAdapters, research_key
from services.reporting.entrypoints.access import ReportingAccess
from services.reporting.entrypoints.dashboard import add_dashboard
from services.reporting.entrypoints.routes import figures, research
from shared.http import add_routes, create_api
from shared.settings import PlatformSettings


def build_api(adapters: ReportingAdapters) -> FastAPI:
    """The reporting API wired to its adapters."""
    app = create_api("reporting", title="Peerlink reporting service",
                     description="Live, de-identified, disclosure-controlled figures.",
                     readiness=[adapters.database.ping])
    access = ReportingAccess(adapters.authorizer, adapters.sessions)
    add_routes(app, figures.router(adapters, access))
    add_routes(app, research.router(adapters, access,
                                    research_key(adapters.settings, adapters.research)))
    add_dashboard(app, adapters, access)
    return app


def create_app(settings: PlatformSettings) -> FastAPI:
    """The API for the process's settings."""
    return build_api(ReportingAdapters(settings))
