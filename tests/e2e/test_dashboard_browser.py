"""The operations dashboard over the real broker, and in a real headless Chromium.

Without a browser: ``/dashboard`` sends people without a session to ``/login``, a bad token is
refused there, a good one gives an opaque session cookie that signing out revokes, the page
carries a Content-Security-Policy and loads only its own scripts, and the release stream
answers with a first ``release`` event at once.

In Debian's Chromium (driven by Playwright): sign in with an ops-viewer token, see a chart and
its table, post one screening, see a published number change without reloading the page, see
"fewer than 8" for the new small cell, write ``docs/dashboard.png``, then sign out and find the
old cookie value refused by the API.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from pydantic import SecretStr

from services.reporting.adapters.tables import metadata
from services.reporting.bootstrap import ReportingService
from services.reporting.entrypoints.dashboard import add_dashboard
from services.reporting.service_layer.sessions import DashboardSessions
from shared.auth import TokenIssuer, generate_signing_key
from shared.db import Database
from shared.http import Authorizer, create_api
from shared.runtime import migrate, token_verifier
from shared.settings import PlatformSettings
from tests.support.platform import RunningPlatform, running_platform, wait_for

pytestmark = pytest.mark.kafka

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
MONTH = "2026-11"
"""The month ``RunningPlatform.screening`` records enquiries in."""
SEED_TEAMS = {"community-north": 28, "community-south": 22, "crisis-team": 12}
"""People asked per team in ``MONTH``: 62 in all, published as 60; one more (63) gives 65."""
EARLIER_MONTHS = {"2026-06": 24, "2026-07": 31, "2026-08": 27, "2026-09": 35, "2026-10": 29}
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


@pytest.fixture(scope="module")
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("dashboard"), "sqlite",
                          reporting_release_seconds="1") as p:
        yield p


def reporting(platform: RunningPlatform, path: str) -> str:
    return platform.url("reporting", path)


def viewer_token(platform: RunningPlatform) -> str:
    return platform.authority.mint("trust", ["ops-viewer"])


def viewer_session(platform: RunningPlatform) -> str:
    """The cookie value of a new sign-in with an ops-viewer token."""
    response = httpx.post(reporting(platform, "/login"), data={"token": viewer_token(platform)},
                          timeout=10)
    assert response.status_code == 303, response.text
    return response.cookies["peerlink_session"]


# ---------------------------------------------------------------- without a browser


def test_the_dashboard_sends_people_without_a_session_to_sign_in(
        platform: RunningPlatform) -> None:
    response = httpx.get(reporting(platform, "/dashboard"), timeout=10)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"

    expired = platform.authority.mint("trust", ["ops-viewer"], lifetime_seconds=-60)
    response = httpx.get(reporting(platform, "/dashboard"), timeout=10,
                         cookies={"peerlink_session": expired})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"

    form = httpx.get(reporting(platform, "/login"), timeout=10)
    assert form.status_code == 200
    assert '<form method="post" action="/login"' in form.text
    assert '<label for="token">' in form.text
    assert "default-src 'self'" in form.headers["content-security-policy"]


def test_a_bad_token_at_sign_in_is_refused_and_a_good_one_gives_a_session(
        platform: RunningPlatform) -> None:
    login = reporting(platform, "/login")
    bad = httpx.post(login, data={"token": "not-a-token"}, timeout=10)
    assert bad.status_code == 401
    assert "not valid" in bad.text
    assert "set-cookie" not in bad.headers

    clinician = platform.authority.mint("trust", ["clinician"])
    refused = httpx.post(login, data={"token": clinician}, timeout=10)
    assert refused.status_code == 403
    assert "ops-viewer" in refused.text
    assert "set-cookie" not in refused.headers

    token = viewer_token(platform)
    good = httpx.post(login, data={"token": token}, timeout=10)
    assert good.status_code == 303
    assert good.headers["location"] == "/dashboard"
    cookie = good.headers["set-cookie"]
    assert cookie.startswith("peerlink_session=")
    session = good.cookies["peerlink_session"]
    assert "." not in session and token not in cookie, "an opaque id, not the token"
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age="):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # not in production
    max_age = re.search(r"Max-Age=(\d+)", cookie, re.IGNORECASE)
    assert max_age and 0 < int(max_age.group(1)) <= platform.settings.token_lifetime_seconds

    prevalence = reporting(platform, "/v1/prevalence")
    assert httpx.get(prevalence, cookies={"peerlink_session": session}, timeout=10
                     ).status_code == 200
    signed_out = httpx.post(reporting(platform, "/logout"), timeout=10,
                            cookies={"peerlink_session": session})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login"
    assert 'peerlink_session=""' in signed_out.headers["set-cookie"]
    assert "max-age=0" in signed_out.headers["set-cookie"].lower()
    assert httpx.get(prevalence, cookies={"peerlink_session": session}, timeout=10
                     ).status_code == 401


def test_in_production_the_session_cookie_is_secure(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    issuer = TokenIssuer(generate_signing_key(), {"partner-a": "dva-partner"})
    (tmp_path / "jwks.json").write_text(json.dumps(issuer.jwks()))
    settings = PlatformSettings(env="production", jwt_jwks_file=tmp_path / "jwks.json",
                                master_key=SecretStr("k" * 64))
    url = f"sqlite:///{tmp_path / 'reporting.db'}"
    migrate("reporting", url)
    database = Database(url, metadata)
    verifier = token_verifier(settings)
    service = SimpleNamespace(settings=settings, verifier=verifier,
                              authorizer=Authorizer(verifier),
                              sessions=DashboardSessions(database, 8 * 3600,
                                                         {"partner-a": "dva-partner"}))
    app = create_api("reporting", title="dashboard probe", description="")
    add_dashboard(app, cast(ReportingService, service))
    token = issuer.mint("partner-a", ["ops-viewer"], lifetime_seconds=600)
    response = TestClient(app, base_url="https://testserver").post(
        "/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    max_age = re.search(r"max-age=(\d+)", cookie)
    assert max_age and 590 <= int(max_age.group(1)) <= 600
    database.dispose()


def test_the_page_has_a_content_security_policy_and_only_its_own_scripts(
        platform: RunningPlatform) -> None:
    page = httpx.get(reporting(platform, "/dashboard"), timeout=10,
                     cookies={"peerlink_session": viewer_session(platform)})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"

    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page.text, re.DOTALL)
    assert scripts, "the page loads its script"
    for attributes, body in scripts:
        source = re.search(r'src="([^"]+)"', attributes)
        assert source and source.group(1).startswith("/static/"), attributes
        assert body.strip() == "", "no inline script"
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", page.text), "no inline event handlers"
    assert "style=" not in page.text

    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert {"/static/dashboard.js", "/static/dashboard.css"} <= set(assets)
    for asset in assets:
        response = httpx.get(reporting(platform, asset), timeout=10)
        assert response.status_code == 200, asset
        text = response.text.replace(SVG_NAMESPACE, "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, asset
    assert httpx.get(reporting(platform, "/static/../api.py"), timeout=10).status_code == 404
    assert httpx.get(reporting(platform, "/static/other.js"), timeout=10).status_code == 404

    with_bearer = httpx.get(reporting(platform, "/dashboard"), timeout=10,
                            headers=platform.headers("trust", "ops-viewer"))
    assert with_bearer.status_code == 200
    wrong_role = httpx.get(reporting(platform, "/dashboard"), timeout=10,
                           headers=platform.headers("trust", "clinician"))
    assert wrong_role.status_code == 403


def first_event(response: httpx.Response, timeout: float) -> tuple[str, dict[str, Any]]:
    """The first named server-sent event of a streaming response."""
    deadline = time.monotonic() + timeout
    name = None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:") and name is not None:
            return name, json.loads(line.removeprefix("data:"))
        if time.monotonic() > deadline:
            break
    raise AssertionError("no event in time")


def test_the_release_stream_sends_a_release_event_at_once(platform: RunningPlatform) -> None:
    url = reporting(platform, "/v1/releases/stream")
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, timeout=10, headers=platform.headers("trust", "clinician")
                     ).status_code == 403
    bearer = platform.headers("trust", "ops-viewer")
    session = {"peerlink_session": viewer_session(platform)}
    for headers, cookies in ((bearer, None), (None, session)):
        with httpx.stream("GET", url, headers=headers, cookies=cookies,
                          timeout=httpx.Timeout(10.0)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            name, data = first_event(response, timeout=10)
        assert name == "release"
        assert set(data) == {"released_at"}


# ---------------------------------------------------------------- in Chromium


def post_enquiries(platform: RunningPlatform) -> None:
    """Enquiries (with their due records) over six months, so the charts have a shape."""
    clinician = platform.headers("trust", "clinician")
    plan = [(MONTH, team) for team, n in SEED_TEAMS.items() for _ in range(n)]
    teams = list(SEED_TEAMS)
    plan += [(month, teams[i % len(teams)]) for month, n in EARLIER_MONTHS.items()
             for i in range(n)]
    with httpx.Client(headers=clinician, timeout=10) as client:
        for i, (month, team) in enumerate(plan):
            day = f"{month}-{2 + i % 20:02d}" if month != MONTH else f"{MONTH}-02"
            record = platform.screening(
                team, asked_on=day, private=i % 7 != 0,
                hark={"humiliated": False, "afraid": i % 4 == 0, "raped": False,
                      "kicked": i % 9 == 0},
                past_abuse="yes" if i % 3 == 1 else "unsure" if i % 10 == 0 else "no")
            if month != MONTH and i % 8 in (3, 6):  # some were not asked, and say why
                del record["hark"], record["past_abuse"]
                record["outcome"] = "declined" if i % 8 == 3 else "not-safe-to-ask"
            due = {"nhs_number": record["nhs_number"], "org": "trust", "team": team,
                   "due_on": day}
            assert client.post(platform.url("screening", "/v1/enquiries/due"),
                               json=due).status_code == 201
            if i % 4 == 0:  # due, not yet asked
                assert client.post(platform.url("screening", "/v1/enquiries/due"), json={
                    **due, "nhs_number": next(platform.numbers)}).status_code == 201
            response = client.post(platform.url("screening", "/v1/screenings"), json=record)
            assert response.status_code == 201, response.text


def org_screened(platform: RunningPlatform) -> Any:
    response = httpx.get(reporting(platform, "/v1/prevalence"),
                         params={"group_by": "org", "period": MONTH},
                         headers=platform.headers("trust", "ops-viewer"), timeout=5)
    response.raise_for_status()
    rows = [r for r in response.json()["rows"] if r["org"] == "trust"]
    return rows[0]["screened"]["value"] if rows else None


def test_the_dashboard_in_chromium_updates_live_without_reloading(
        platform: RunningPlatform) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium package is not installed")
    from playwright.sync_api import expect, sync_playwright

    post_enquiries(platform)
    wait_for(lambda: org_screened(platform) == 60)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900},
                                          locale="en-GB", timezone_id="Europe/London")
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda message: problems.append(message.text)
                    if message.type == "error" else None)

            # sign in through the form
            page.goto(reporting(platform, "/dashboard"))
            assert page.url.endswith("/login")
            page.get_by_label("Access token").fill(viewer_token(platform))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r"/dashboard$"))
            page.goto(reporting(platform, f"/dashboard?period={MONTH}&group_by=org"))

            # a chart and its table, with the method beside it
            panel = page.locator("#prevalence-breakdown")
            expect(panel.locator("svg[role=img] rect").first).to_be_visible(timeout=30_000)
            table = panel.get_by_role("table", name=re.compile(
                r"Prevalence among people screened by organisation"))
            expect(table.get_by_role("columnheader", name="Screened")).to_be_visible()
            trust = table.locator("tbody tr").filter(
                has=page.get_by_role("rowheader", name="trust", exact=True))
            screened = trust.locator("td").first.locator(".count")
            expect(screened).to_have_text("60", timeout=30_000)
            expect(panel.locator(".method")).to_contain_text("fewer than 8")
            expect(page.locator("#prevalence-trend svg[role=img] circle.point").first
                   ).to_be_visible()
            expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
            page.evaluate("window.__notReloaded = true")

            # one more enquiry, in a team of its own
            team = f"live-{uuid.uuid4().hex[:8]}"
            record = platform.screening(team)
            response = httpx.post(platform.url("screening", "/v1/screenings"), json=record,
                                  headers=platform.headers("trust", "clinician"), timeout=10)
            assert response.status_code == 201, response.text

            # 63 is published as 65: the number changes in place at the next release
            expect(screened).to_have_text("65", timeout=30_000)
            assert page.evaluate("window.__notReloaded") is True
            expect(page.locator("#announcer")).to_contain_text("New release")
            assert page.locator("#announcer").get_attribute("aria-live") == "polite"

            # the new team's single enquiry is a small cell, shown in words
            page.get_by_label("Break down by").select_option("team")
            by_team = panel.get_by_role("table", name=re.compile(
                r"Prevalence among people screened by team"))
            row = by_team.locator("tbody tr").filter(
                has=page.get_by_role("rowheader", name=team, exact=True))
            expect(row.locator("td").first).to_contain_text("fewer than 8", timeout=30_000)
            expect(row.locator("td").nth(1)).to_contain_text("rate withheld")
            expect(panel.locator("svg text.bar-words").first).to_contain_text("fewer than 8")
            assert page.evaluate("window.__notReloaded") is True

            content = page.content()
            assert str(record["nhs_number"]) not in content
            assert response.json().get("subject_id", "\0") not in content
            assert not [p for p in problems if "favicon" not in p], problems

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # signing out revokes the session: the old cookie value no longer works
            [cookie] = [c for c in context.cookies() if c.get("name") == "peerlink_session"]
            old = {"peerlink_session": cookie.get("value", "")}
            assert "." not in old["peerlink_session"]
            figures = reporting(platform, "/v1/prevalence")
            assert httpx.get(figures, cookies=old, timeout=10).status_code == 200
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(re.compile(r"/login$"))
            assert not [c for c in context.cookies() if c.get("name") == "peerlink_session"]
            assert httpx.get(figures, cookies=old, timeout=10).status_code == 401
            page.goto(reporting(platform, "/dashboard"))
            assert page.url.endswith("/login")
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 20_000
