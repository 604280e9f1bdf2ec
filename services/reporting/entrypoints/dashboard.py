"""The operations dashboard: sign-in, the page, its own static files and the live release stream.

Browsers sign in once by pasting an ops-viewer token at ``/login``. That opens a session in the
reporting database (only the SHA-256 of its random id is stored) and sets the id, never the
token, as an HttpOnly, SameSite=Strict cookie (``peerlink_session``) that the page's ``fetch``
calls and its ``EventSource`` send back. A session grants ops-viewer only; ``/logout`` revokes
it, so the same cookie is refused from then on. The page shows only what the JSON API
publishes: controlled figures, their method and the release time; never subject references or
personal data. Each resource is a router of its own (``routes/``).
"""

from __future__ import annotations

from fastapi import FastAPI

from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.access import ReportingAccess
from services.reporting.entrypoints.routes import dashboard, releases, sign_in, static
from shared.http import add_routes


def add_dashboard(app: FastAPI, adapters: ReportingAdapters,
                  access: ReportingAccess | None = None) -> None:
    """Register ``/login``, ``/logout``, ``/dashboard``, ``/static/*`` and the release stream."""
    access = access or ReportingAccess(adapters.authorizer, adapters.sessions)
    add_routes(app, sign_in.router(adapters), dashboard.router(adapters, access),
               static.router(), releases.router(adapters, access))
