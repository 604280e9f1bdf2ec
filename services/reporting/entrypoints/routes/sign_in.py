"""Dashboard sign-in: ``/login`` (the form, and a pasted ops-viewer token opening a session
whose opaque id, never the token, goes in an HttpOnly, SameSite=Strict cookie) and
``/logout`` (revoking it, so the same cookie is refused from then on)."""

from __future__ import annotations

import asyncio
from typing import Final
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.access import SESSION_COOKIE, token_expiry
from services.reporting.entrypoints.pages import login_page
from services.reporting.service_layer.viewing import VIEWER
from shared.auth import NotAuthenticated, NotPermitted
from shared.db import utcnow
from shared.http import ApiError

MAX_FORM_BYTES: Final = 16_384


def same_origin(request: Request) -> bool:
    """Whether a form post comes from this site's own pages (or from a non-browser client)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in {"same-origin", "none"}
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def router(adapters: ReportingAdapters) -> APIRouter:
    """``GET /login``, ``POST /login`` and ``POST /logout`` (none in the OpenAPI document)."""
    routes = APIRouter()
    sessions = adapters.sessions
    production = adapters.settings.env == "production"

    @routes.get("/login", include_in_schema=False)
    def login_form() -> HTMLResponse:
        """The sign-in form."""
        return login_page()

    @routes.post("/login", include_in_schema=False, response_model=None)
    async def login(request: Request) -> HTMLResponse | RedirectResponse:
        """Check a pasted token and open a session; its opaque id goes in the cookie."""
        if not same_origin(request):
            return login_page("Sign in from this site's own form.", 403)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return login_page("That is too long to be an access token.", 413)
        form = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
        token = (form.get("token") or [""])[0].strip()
        if not token:
            return login_page("Paste your access token to sign in.", 401)
        try:
            caller = adapters.verifier.verify(token)
            opened = await asyncio.to_thread(sessions.open, caller, token_expiry(token))
        except NotAuthenticated:
            return login_page("That token is not valid or has expired. Ask for a new one.", 401)
        except NotPermitted:
            return login_page(f"That token does not carry the {VIEWER} role needed here.", 403)
        remaining = max(1, int((opened.expires_at - utcnow()).total_seconds()))
        response = RedirectResponse("/dashboard", status_code=303,
                                    headers={"Cache-Control": "no-store"})
        response.set_cookie(SESSION_COOKIE, opened.session_id, max_age=remaining, path="/",
                            httponly=True, samesite="strict", secure=production)
        return response

    @routes.post("/logout", include_in_schema=False)
    def logout(request: Request) -> RedirectResponse:
        """Revoke the session, so its cookie is refused from now on, and forget the cookie."""
        if not same_origin(request):
            raise ApiError(403, "forbidden", "sign out from this site's own page")
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            sessions.revoke(session_id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=production)
        return response

    return routes
