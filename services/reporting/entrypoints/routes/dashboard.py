"""The dashboard page, for ops-viewers (by session or token); everyone else is sent to sign
in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.access import SESSION_COOKIE, ReportingAccess
from services.reporting.entrypoints.pages import dashboard_page, login_page
from services.reporting.service_layer.viewing import VIEWER
from shared.auth import NotAuthenticated, NotPermitted, Principal
from shared.http import BearerCredentials


def router(adapters: ReportingAdapters, access: ReportingAccess) -> APIRouter:
    """``GET /dashboard`` (not in the OpenAPI document)."""
    routes = APIRouter()

    def org_name(caller: Principal) -> str:
        organisation = adapters.settings.organisations.get(caller.org)
        return organisation.name if organisation is not None else caller.org

    @routes.get("/dashboard", include_in_schema=False, response_model=None)
    def dashboard(request: Request, credentials: BearerCredentials
                  ) -> HTMLResponse | RedirectResponse:
        """The page, for ops-viewers; everyone else is sent to sign in."""
        try:
            caller = access.check(access.authenticate(request, credentials), VIEWER)
        except NotAuthenticated:
            response = RedirectResponse("/login", status_code=303)
            if request.cookies.get(SESSION_COOKIE):
                response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        except NotPermitted:
            return login_page(f"Your token does not carry the {VIEWER} role; sign in with one "
                              "that does.", 403)
        return dashboard_page(org_name(caller))

    return routes
