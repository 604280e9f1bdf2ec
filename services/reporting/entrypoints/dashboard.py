"""The operations dashboard: sign-in, the page, its own static files and the live release stream.

Browsers sign in once by pasting an ops-viewer token at ``/login``. That opens a session in the
reporting database (only the SHA-256 of its random id is stored) and sets the id, never the
token, as an HttpOnly, SameSite=Strict cookie (``peerlink_session``) that the page's ``fetch``
calls and its ``EventSource`` send back. A session grants ops-viewer only; ``/logout`` revokes
it, so the same cookie is refused from then on. The page shows only what the JSON API
publishes: controlled figures, their method and the release time; never subject references or
personal data.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from string import Template
from typing import Final
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, StreamingResponse

from services.reporting.bootstrap import ReportingService
from services.reporting.entrypoints.access import (
    SESSION_COOKIE,
    Access,
    Credentials,
    ReportingAccess,
    token_expiry,
)
from services.reporting.service_layer.read_model import latest_release_time
from services.reporting.service_layer.sessions import SESSION_ROLE
from shared.auth import NotAuthenticated, NotPermitted, Principal
from shared.db import utcnow
from shared.http import ApiError

ROLE: Final = SESSION_ROLE
STATIC_DIR: Final = Path(__file__).with_name("static")
STATIC_FILES: Final = {"dashboard.js": "text/javascript; charset=utf-8",
                       "dashboard.css": "text/css; charset=utf-8",
                       "favicon.svg": "image/svg+xml"}
CSP: Final = ("default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
              "frame-ancestors 'none'")
PAGE_HEADERS: Final = {"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                       "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
                       "X-Frame-Options": "DENY"}
POLL_SECONDS: Final = 0.5
KEEPALIVE_SECONDS: Final = 15.0
MAX_FORM_BYTES: Final = 16_384


DASHBOARD_BODY: Final = Template("""<a class="skip" href="#main">Skip to the figures</a>
<header class="masthead">
 <div class="brand">
  <h1>Peerlink operations dashboard</h1>
  <p class="subtitle">Routine enquiry, coverage and peer mentoring: de-identified,
   disclosure-controlled figures</p>
 </div>
 <div class="session">
  <span>Signed in for $org_name</span>
  <form method="post" action="/logout"><button type="submit" class="link-button">Sign out</button>
  </form>
 </div>
</header>
<main id="main">
<section class="status" aria-labelledby="release-heading">
 <h2 id="release-heading" class="visually-hidden">Release and filters</h2>
 <div class="release">
  <p>Latest release: <time id="released-at">not yet published</time>
   <span id="connection" class="badge badge-wait">connecting</span></p>
  <p id="announcer" class="announcer" role="status" aria-live="polite" aria-atomic="true"></p>
 </div>
 <form id="controls" class="controls">
  <div class="field"><label for="period">Period</label>
   <select id="period" name="period"><option value="last-12-months">Last 12 months</option>
   </select></div>
  <div class="field"><label for="group-by">Break down by</label>
   <select id="group-by" name="group_by">$groups</select></div>
 </form>
</section>
<div class="grid">
 <section class="panel" id="prevalence-trend" aria-labelledby="prevalence-trend-h">
  <h2 id="prevalence-trend-h">Prevalence among people screened, by month</h2>
  <div class="figure" data-figure="prevalence-trend"><p class="placeholder">Loading figures</p>
  </div>
 </section>
 <section class="panel" id="coverage-trend" aria-labelledby="coverage-trend-h">
  <h2 id="coverage-trend-h">Screening coverage, by month</h2>
  <div class="figure" data-figure="coverage-trend"><p class="placeholder">Loading figures</p>
  </div>
 </section>
 <section class="panel" id="prevalence-breakdown" aria-labelledby="prevalence-breakdown-h">
  <h2 id="prevalence-breakdown-h">Prevalence <span class="by-label">by organisation</span></h2>
  <div class="figure" data-figure="prevalence-breakdown">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel" id="coverage-breakdown" aria-labelledby="coverage-breakdown-h">
  <h2 id="coverage-breakdown-h">Coverage <span class="by-label">by organisation</span></h2>
  <div class="figure" data-figure="coverage-breakdown">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel wide" id="engagement-funnel" aria-labelledby="engagement-funnel-h">
  <h2 id="engagement-funnel-h">Peer mentoring: people from referral to ending, by the
   organisation receiving the referral</h2>
  <div class="figure" data-figure="engagement-funnel">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel wide" id="engagement-referrers" aria-labelledby="engagement-referrers-h">
  <h2 id="engagement-referrers-h">Peer mentoring: people by the referring organisation</h2>
  <div class="figure" data-figure="engagement-referrers">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel wide" id="engagement-wellbeing" aria-labelledby="engagement-wellbeing-h">
  <h2 id="engagement-wellbeing-h">Peer mentoring: wellbeing (SWEMWBS) change from intake to
   exit</h2>
  <div class="figure" data-figure="engagement-wellbeing">
   <p class="placeholder">Loading figures</p></div>
 </section>
</div>
<noscript><p class="alert">The charts need JavaScript; the same figures are available from the
 JSON API (/v1/prevalence, /v1/coverage, /v1/engagement).</p></noscript>
</main>
<footer class="footer"><p>Every figure is disclosure-controlled; the method is stated
 beside every table. Every script and style on this page is served by the reporting service.</p>
</footer>""")


def _same_origin(request: Request) -> bool:
    """Whether a form post comes from this site's own pages (or from a non-browser client)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in {"same-origin", "none"}
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _page(title: str, body: str, status: int = 200, script: bool = False) -> HTMLResponse:
    """A full HTML page with the dashboard's stylesheet and security headers."""
    js = '\n<script src="/static/dashboard.js" defer></script>' if script else ""
    document = f"""<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/dashboard.css">{js}
</head>
<body>
{body}
</body>
</html>
"""
    return HTMLResponse(document, status_code=status, headers=PAGE_HEADERS)


def login_page(message: str | None = None, status: int = 200) -> HTMLResponse:
    """The sign-in form, optionally with an error message."""
    alert = (f'<p class="alert" role="alert" id="login-error">{html.escape(message)}</p>'
             if message else "")
    described = ' aria-describedby="token-help login-error"' if message else \
        ' aria-describedby="token-help"'
    body = f"""<main class="login" id="main">
<h1>Sign in to the Peerlink operations dashboard</h1>
{alert}
<form method="post" action="/login" class="login-form">
<label for="token">Access token</label>
<p id="token-help" class="help">Paste the bearer token issued to you for the ops-viewer role.
It is checked once and not kept: you get a session until you sign out or it expires.</p>
<textarea id="token" name="token" rows="5" required autocomplete="off" autocapitalize="off"
 spellcheck="false"{described}></textarea>
<button type="submit">Sign in</button>
</form>
<p class="help">The dashboard shows de-identified, disclosure-controlled figures only.</p>
</main>"""
    return _page("Sign in - Peerlink operations dashboard", body, status)


def dashboard_page(org_name: str) -> HTMLResponse:
    """The dashboard's HTML shell; ``dashboard.js`` fills in the figures."""
    groups = "".join(f'<option value="{value}">{label}</option>' for value, label in (
        ("org", "Organisation"), ("team", "Team"), ("borough", "Borough"),
        ("gender", "Gender"), ("age_band", "Age band")))
    body = DASHBOARD_BODY.substitute(org_name=html.escape(org_name), groups=groups)
    return _page("Peerlink operations dashboard", body, script=True)


def release_stream(request: Request, service: ReportingService, expires_at: datetime,
                   still_valid: Callable[[], bool] = lambda: True) -> AsyncIterator[str]:
    """Server-sent events: the release time at connect and whenever it changes, while the
    caller's token or session lasts (a session signed out elsewhere ends the stream)."""

    async def events() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        last: str | None = None
        first = True
        quiet_since = time.monotonic()
        while not await request.is_disconnected() and utcnow() < expires_at:
            if not await asyncio.to_thread(still_valid):
                break
            latest = await asyncio.to_thread(latest_release_time, service.database)
            released_at = latest.isoformat() if latest is not None else None
            if first or released_at != last:
                first, last = False, released_at
                quiet_since = time.monotonic()
                yield f"event: release\ndata: {json.dumps({'released_at': released_at})}\n\n"
            elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return events()


def add_dashboard(app: FastAPI, service: ReportingService) -> None:
    """Register ``/login``, ``/logout``, ``/dashboard``, ``/static/*`` and the release stream."""
    verifier = service.verifier
    sessions = service.sessions
    access = ReportingAccess(service.authorizer, sessions)
    production = service.settings.env == "production"

    def viewer(token: str) -> Principal:
        """The caller a token names, if it carries the ops-viewer role."""
        caller = verifier.verify(token)
        if not caller.has_any(frozenset({ROLE})):
            raise NotPermitted(f"this page needs the {ROLE} role")
        return caller

    def org_name(caller: Principal) -> str:
        organisation = service.settings.organisations.get(caller.org)
        return organisation.name if organisation is not None else caller.org

    @app.get("/login", include_in_schema=False)
    def login_form() -> HTMLResponse:
        """The sign-in form."""
        return login_page()

    @app.post("/login", include_in_schema=False, response_model=None)
    async def login(request: Request) -> HTMLResponse | RedirectResponse:
        """Check a pasted token and open a session; its opaque id goes in the cookie."""
        if not _same_origin(request):
            return login_page("Sign in from this site's own form.", 403)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return login_page("That is too long to be an access token.", 413)
        form = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
        token = (form.get("token") or [""])[0].strip()
        if not token:
            return login_page("Paste your access token to sign in.", 401)
        try:
            caller = viewer(token)
            opened = await asyncio.to_thread(sessions.open, caller, token_expiry(token))
        except NotAuthenticated:
            return login_page("That token is not valid or has expired. Ask for a new one.", 401)
        except NotPermitted:
            return login_page(f"That token does not carry the {ROLE} role needed here.", 403)
        remaining = max(1, int((opened.expires_at - utcnow()).total_seconds()))
        response = RedirectResponse("/dashboard", status_code=303,
                                    headers={"Cache-Control": "no-store"})
        response.set_cookie(SESSION_COOKIE, opened.session_id, max_age=remaining, path="/",
                            httponly=True, samesite="strict", secure=production)
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request) -> RedirectResponse:
        """Revoke the session, so its cookie is refused from now on, and forget the cookie."""
        if not _same_origin(request):
            raise ApiError(403, "forbidden", "sign out from this site's own page")
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            sessions.revoke(session_id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=production)
        return response

    @app.get("/dashboard", include_in_schema=False, response_model=None)
    def dashboard(request: Request, credentials: Credentials
                  ) -> HTMLResponse | RedirectResponse:
        """The page, for ops-viewers; everyone else is sent to sign in."""
        try:
            caller = access.check(access.authenticate(request, credentials), ROLE)
        except NotAuthenticated:
            response = RedirectResponse("/login", status_code=303)
            if request.cookies.get(SESSION_COOKIE):
                response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        except NotPermitted:
            return login_page(f"Your token does not carry the {ROLE} role; sign in with one "
                              "that does.", 403)
        return dashboard_page(org_name(caller))

    def static_file(name: str) -> Callable[[], FileResponse]:
        def serve() -> FileResponse:
            return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name],
                                headers={"Cache-Control": "no-cache",
                                         "X-Content-Type-Options": "nosniff"})
        serve.__doc__ = f"The dashboard's {name}."
        return serve

    for name in STATIC_FILES:  # only these files: nothing else under static/ is reachable
        app.add_api_route(f"/static/{name}", static_file(name), methods=["GET"],
                          include_in_schema=False)

    @app.get("/v1/releases/stream", response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    def releases_stream(request: Request, credentials: Credentials) -> StreamingResponse:
        """Server-sent ``release`` events: the release time at connect and at every release."""
        caller: Access = access.authenticate(request, credentials)
        access.check(caller, ROLE)
        return StreamingResponse(
            release_stream(request, service, caller.expires_at,
                           lambda: access.still_valid(caller)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
