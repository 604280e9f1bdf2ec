"""Dashboard sessions on both databases, over real HTTP: the cookie is an opaque random id
(only its hash stored), grants ops-viewer only, and stops working once signed out or expired.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import Depends
from sqlalchemy import insert, select, update

from services.reporting.adapters.tables import dashboard_sessions
from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.access import SESSION_COOKIE, ReportingAccess
from services.reporting.entrypoints.api import build_api
from services.reporting.service_layer.sessions import DashboardSessions, id_hash
from shared.auth import NotPermitted, Principal
from shared.db import utcnow
from shared.issuer import development_issuer
from tests.support.http import serving
from tests.support.services import settings_for

FIGURES = ("/v1/prevalence", "/v1/coverage", "/v1/engagement", "/v1/prevalence?format=csv")


class Reporting:
    """The reporting API on a real port, its adapters and a client without cookies."""

    def __init__(self, adapters: ReportingAdapters, url: str) -> None:
        self.adapters = adapters
        self.url = url

    def token(self, *roles: str, org: str = "trust", lifetime_seconds: int | None = None,
              subject: str | None = None) -> str:
        return development_issuer(self.adapters.settings).mint(
            org, list(roles), subject=subject, lifetime_seconds=lifetime_seconds)

    def sign_in(self, token: str) -> httpx.Response:
        return httpx.post(f"{self.url}/login", data={"token": token}, timeout=10)

    def session(self, *roles: str, **token: Any) -> str:
        """The cookie value of a new sign-in with a token of ``roles``."""
        response = self.sign_in(self.token(*roles, **token))
        assert response.status_code == 303, response.text
        return response.cookies[SESSION_COOKIE]

    def get(self, path: str, session: str | None = None, **kwargs: Any) -> httpx.Response:
        cookies = {SESSION_COOKIE: session} if session is not None else None
        return httpx.get(f"{self.url}{path}", cookies=cookies, timeout=10, **kwargs)

    def rows(self) -> list[Any]:
        with self.adapters.database.read() as session:
            return list(session.execute(select(dashboard_sessions)))


@pytest.fixture
def reporting(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[Reporting]:
    settings = settings_for(monkeypatch, tmp_path, {"reporting": database_url})
    adapters = ReportingAdapters(settings)
    app = build_api(adapters)
    probe_access = ReportingAccess(adapters.authorizer, adapters.sessions)

    @app.get("/probe/dpo", dependencies=[Depends(probe_access.require("dpo"))])
    def needs_dpo() -> dict[str, str]:  # a route needing dpo, as consent's audit routes do
        return {"status": "ok"}

    with serving(app) as url:
        yield Reporting(adapters, url)
    adapters.database.dispose()


def is_jwt(value: str) -> bool:
    if value.count(".") == 2:
        return True
    try:
        jwt.decode(value, options={"verify_signature": False})
    except jwt.PyJWTError:
        pass
    else:
        return True
    try:
        json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        return False
    return True


def test_the_cookie_is_an_opaque_random_id_and_only_its_hash_is_stored(
        reporting: Reporting) -> None:
    token = reporting.token("ops-viewer", subject="viewer-1")
    first, second = reporting.sign_in(token), reporting.sign_in(token)
    cookies = [r.cookies[SESSION_COOKIE] for r in (first, second)]

    assert cookies[0] != cookies[1], "a new session id at every sign-in"
    for cookie in cookies:
        assert "." not in cookie and not is_jwt(cookie)
        assert len(cookie) >= 43 and token not in cookie
    header = first.headers["set-cookie"].lower()
    for attribute in ("httponly", "samesite=strict", "path=/", "max-age="):
        assert attribute in header

    rows = reporting.rows()
    assert {r.id_hash for r in rows} == {hashlib.sha256(c.encode()).hexdigest()
                                         for c in cookies}
    stored = json.dumps([list(map(str, r)) for r in rows])
    assert not any(c in stored for c in cookies), "the raw id is never stored"
    assert token not in stored
    assert {(r.org, r.subject, r.revoked_at) for r in rows} == {("trust", "viewer-1", None)}

    for path in FIGURES:
        assert reporting.get(path, cookies[0]).status_code == 200, path
    assert reporting.get("/v1/prevalence?format=csv", cookies[0]).headers[
        "content-type"].startswith("text/csv")
    assert reporting.get("/dashboard", cookies[0]).status_code == 200


def test_after_sign_out_the_same_cookie_is_refused(reporting: Reporting) -> None:
    cookie = reporting.session("ops-viewer")
    other = reporting.session("ops-viewer")
    assert reporting.get("/v1/prevalence", cookie).status_code == 200

    signed_out = httpx.post(f"{reporting.url}/logout", cookies={SESSION_COOKIE: cookie},
                            timeout=10)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login"
    assert "max-age=0" in signed_out.headers["set-cookie"].lower()
    [row] = [r for r in reporting.rows() if r.id_hash == id_hash(cookie)]
    assert row.revoked_at is not None

    for path in FIGURES:  # the cookie value replayed, as a copied cookie would be
        refused = reporting.get(path, cookie)
        assert refused.status_code == 401, path
        assert refused.json()["error"] == "not-authenticated"
        assert cookie not in refused.text
    assert reporting.get("/v1/releases/stream", cookie).status_code == 401
    page = reporting.get("/dashboard", cookie)
    assert page.status_code == 303 and page.headers["location"] == "/login"

    assert reporting.get("/v1/prevalence", other).status_code == 200, "only that session ends"
    again = httpx.post(f"{reporting.url}/logout", cookies={SESSION_COOKIE: cookie}, timeout=10)
    assert again.status_code == 303


def test_unknown_cookies_and_raw_tokens_in_the_cookie_are_refused(reporting: Reporting) -> None:
    for value in ("made-up", "x" * 500, reporting.token("ops-viewer")):
        assert reporting.get("/v1/prevalence", value).status_code == 401
        page = reporting.get("/dashboard", value)
        assert page.status_code == 303 and page.headers["location"] == "/login"
    assert reporting.get("/v1/prevalence").status_code == 401


def test_an_expired_session_is_refused(reporting: Reporting) -> None:
    cookie = reporting.session("ops-viewer")
    assert reporting.get("/v1/prevalence", cookie).status_code == 200
    with reporting.adapters.database.unit_of_work() as uow:
        uow.session.execute(update(dashboard_sessions).where(
            dashboard_sessions.c.id_hash == id_hash(cookie)).values(
            expires_at=utcnow() - timedelta(seconds=1)))

    assert reporting.get("/v1/prevalence", cookie).status_code == 401
    assert reporting.get("/v1/releases/stream", cookie).status_code == 401
    page = reporting.get("/dashboard", cookie)
    assert page.status_code == 303 and page.headers["location"] == "/login"


def test_a_session_ends_with_its_token_or_the_configured_lifetime_whichever_is_first(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERLINK_REPORTING_SESSION_SECONDS", "1")
    settings = settings_for(monkeypatch, tmp_path, {"reporting": database_url})
    adapters = ReportingAdapters(settings)
    try:
        with serving(build_api(adapters)) as url:
            reporting = Reporting(adapters, url)
            short = reporting.sign_in(reporting.token("ops-viewer"))
            assert "max-age=1" in short.headers["set-cookie"].lower()
            cookie = short.cookies[SESSION_COOKIE]
            time.sleep(1.2)
            assert reporting.get("/v1/prevalence", cookie).status_code == 401

        eight_hours = DashboardSessions(adapters.database, 8 * 3600, {"trust": "nhs-trust"})
        opened = eight_hours.open(
            Principal("viewer", "trust", frozenset({"ops-viewer"})),
            utcnow() + timedelta(seconds=600))
        assert timedelta(seconds=590) < opened.expires_at - utcnow() <= timedelta(seconds=600)
    finally:
        adapters.database.dispose()


def test_a_session_grants_ops_viewer_only_whatever_the_token_carried(
        reporting: Reporting) -> None:
    token = reporting.token("ops-viewer", "dpo")
    assert reporting.get("/probe/dpo", headers={"Authorization": f"Bearer {token}"}
                         ).status_code == 200, "the token itself is a dpo's"

    response = reporting.sign_in(token)
    assert response.status_code == 303
    cookie = response.cookies[SESSION_COOKIE]
    refused = reporting.get("/probe/dpo", cookie)
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert reporting.get("/v1/prevalence", cookie).status_code == 200

    active = reporting.adapters.sessions.lookup(cookie)
    assert active.principal.roles == frozenset({"ops-viewer"})
    assert (active.principal.org, active.principal.org_kind) == ("trust", "nhs-trust")
    access = ReportingAccess(reporting.adapters.authorizer, reporting.adapters.sessions)
    for role in ("dpo", "clinician", "service", "safeguarding-lead"):
        with pytest.raises(NotPermitted):
            access.require(role)(_request_with(cookie), None)


def _request_with(cookie: str) -> Any:
    from starlette.requests import Request

    header = f"{SESSION_COOKIE}={cookie}".encode()
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [
        (b"cookie", header)], "query_string": b""})


def test_a_partner_session_acts_for_that_partner(reporting: Reporting) -> None:
    cookie = reporting.session("ops-viewer", org="partner-a")
    principal = reporting.adapters.sessions.lookup(cookie).principal
    assert (principal.org, principal.org_kind) == ("partner-a", "dva-partner")


def test_a_token_without_ops_viewer_cannot_sign_in(reporting: Reporting) -> None:
    service_token = development_issuer(reporting.adapters.settings).mint_service("screening")
    for token in (reporting.token("clinician"), reporting.token("dpo"), service_token):
        refused = reporting.sign_in(token)
        assert refused.status_code == 403, refused.text
        assert "ops-viewer" in refused.text
        assert "set-cookie" not in refused.headers
    expired = reporting.sign_in(reporting.token("ops-viewer", lifetime_seconds=-60))
    assert expired.status_code == 401 and "set-cookie" not in expired.headers
    assert reporting.rows() == []


def test_signing_in_purges_sessions_expired_over_a_day_ago(reporting: Reporting) -> None:
    now = utcnow()
    with reporting.adapters.database.unit_of_work() as uow:
        for name, ended in (("old", timedelta(days=2)), ("recent", timedelta(hours=1))):
            uow.session.execute(insert(dashboard_sessions).values(
                id_hash=id_hash(name), org="trust", subject="s", created_at=now - ended * 2,
                expires_at=now - ended, revoked_at=None))
    cookie = reporting.session("ops-viewer")
    assert {r.id_hash for r in reporting.rows()} == {id_hash("recent"), id_hash(cookie)}


def test_a_bearer_token_is_used_when_sent_and_verified_as_before(reporting: Reporting) -> None:
    cookie = reporting.session("ops-viewer")
    bad = {"Authorization": "Bearer not-a-token"}
    assert reporting.get("/v1/prevalence", cookie, headers=bad).status_code == 401
    clinician = {"Authorization": f"Bearer {reporting.token('clinician')}"}
    assert reporting.get("/v1/prevalence", cookie, headers=clinician).status_code == 403
    viewer = {"Authorization": f"Bearer {reporting.token('ops-viewer')}"}
    assert reporting.get("/v1/prevalence", headers=viewer).status_code == 200


def test_signing_out_ends_an_open_release_stream(reporting: Reporting) -> None:
    cookie = reporting.session("ops-viewer")
    with httpx.stream("GET", f"{reporting.url}/v1/releases/stream",
                      cookies={SESSION_COOKIE: cookie}, timeout=httpx.Timeout(10.0)) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert any(line.startswith("event: release") for line in _until_event(lines))
        assert httpx.post(f"{reporting.url}/logout", cookies={SESSION_COOKIE: cookie},
                          timeout=10).status_code == 303
        started = time.monotonic()
        for _ in lines:  # ends at the next poll instead of running on
            pass
        assert time.monotonic() - started < 5


def _until_event(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        yield line
        if line.startswith("event:"):
            return
