"""The operations dashboard over the real broker, and in a real headless Chromium.

Without a browser: ``/dashboard`` sends people without a session to ``/login``, a bad token is
refused there, a good one gives an opaque session cookie that signing out revokes, the page
carries a Content-Security-Policy and loads only its own scripts, and the release stream
answers with a first ``release`` event at once.

In Debian's Chromium (driven by Playwright): sign in with an ops-viewer token, see a chart and
its table with when each row last changed, post ten screenings, see a published number change
without reloading the page, see the new team's row marked held under issue 12's release rule,
take a screenshot into the test's temporary directory (``make screenshot`` makes the one in
``docs/``, from the demo), then sign out and find the old cookie value refused by the API.

In Chromium over a stubbed API (Playwright answers the JSON figures and the release stream):
engagement as people, by the organisation receiving the referral and by the referring one,
with the wellbeing table; every table says when each row last changed and marks held rows in
words; the release rule beside the method; and a release changes a figure in place.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from ops.migrations import migrate
from services.reporting.adapters.tables import metadata
from services.reporting.bootstrap import ReportingAdapters
from services.reporting.entrypoints.dashboard import add_dashboard
from services.reporting.service_layer.sessions import DashboardSessions
from shared.auth import TokenIssuer, generate_signing_key
from shared.db import Database
from shared.http import Authorizer, create_api
from shared.runtime import token_verifier
from shared.settings import PlatformSettings
from tests.support.platform import RunningPlatform, running_platform, wait_for

pytestmark = pytest.mark.kafka

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
MONTH = "2026-11"
"""The month ``RunningPlatform.screening`` records enquiries in."""
SEED_TEAMS = {"community-north": 28, "community-south": 22, "crisis-team": 12}
"""People asked per team in ``MONTH``: 62 in all."""
LIVE_PEOPLE = 10
"""People screened in a new team while the page is open: as many as the release rule's k, so the
figures move (a figure changes only once 10 people have entered or left it)."""
LIVE_PAST_ABUSE = 3
"""Of them, those disclosing past abuse: a change too small to publish under the release rule."""
LIVE_MORE = 5
"""People screened in the same team afterwards: half of k, so the row says it is held (it never
does for one person's event, nor for what anyone said) while its figures stay as published."""
ONE_CELL = {"borough": "camden", "gender": "female", "age_band": "25-34"}
"""Everyone screened here shares a borough, gender and age band. With people spread across
them at random, some of those rows stay fewer than K people behind the Trust's, and the overlap
check then holds the Trust's total where it was (disclosure.md, "A total can stay held behind a
small group"), so the page would have no change to show."""
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
    add_dashboard(app, cast(ReportingAdapters, service))
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
                team, **ONE_CELL, asked_on=day, private=i % 7 != 0,
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


def org_row(platform: RunningPlatform) -> dict[str, Any] | None:
    """Trust's prevalence row in ``MONTH``, as the API publishes it."""
    response = httpx.get(reporting(platform, "/v1/prevalence"),
                         params={"group_by": "org", "period": MONTH},
                         headers=platform.headers("trust", "ops-viewer"), timeout=5)
    response.raise_for_status()
    rows = [r for r in response.json()["rows"] if r["org"] == "trust"]
    return rows[0] if rows else None


def org_screened(platform: RunningPlatform) -> Any:
    row = org_row(platform)
    return row["screened"]["value"] if row else None


def settled(read: Any, other_than: Any = None, quiet: float = 3.0, timeout: float = 60.0
            ) -> Any:
    """What ``read`` gives once it is not None nor ``other_than`` and has stayed the same for
    ``quiet`` seconds (releases come every second): the figure once its events are in."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        value = read()
        if value != last:
            last, since = value, time.monotonic()
        elif value is not None and value != other_than and time.monotonic() - since >= quiet:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not settled within {timeout:.0f} s (last {last!r})")


def test_the_dashboard_in_chromium_updates_live_without_reloading(
        platform: RunningPlatform, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium package is not installed")
    from playwright.sync_api import expect, sync_playwright

    post_enquiries(platform)
    wait_for(lambda: org_row(platform))
    # Issue 12's release rule: a figure changes only once 10 people moved in it, so which of
    # the last few people are published yet depends on when the releases fell; the page must
    # show what the API publishes.
    first = settled(lambda: org_screened(platform))

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
            expect(screened).to_have_text(str(first), timeout=30_000)
            expect(panel.locator(".method")).to_contain_text("fewer than 8")
            # when the row last changed
            expect(table.get_by_role("columnheader", name="Last changed")).to_have_count(1)
            expect(trust.locator("td.changed-at time")).to_be_visible()
            expect(page.locator("#prevalence-trend svg[role=img] circle.point").first
                   ).to_be_visible()
            expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
            page.evaluate("window.__notReloaded = true")

            # ten more enquiries, in a team of their own; three disclose past abuse
            team = f"live-{uuid.uuid4().hex[:8]}"
            records = [platform.screening(team, **ONE_CELL,
                                          past_abuse="yes" if i < LIVE_PAST_ABUSE
                                          else "no", acceptability={"acceptable": "yes"})
                       for i in range(LIVE_PEOPLE)]
            subjects = []
            for record in records:
                response = httpx.post(platform.url("screening", "/v1/screenings"), json=record,
                                      headers=platform.headers("trust", "clinician"),
                                      timeout=10)
                assert response.status_code == 201, response.text
                subjects.append(response.json().get("subject_id", "\0"))

            # the number changes in place at a later release
            after = settled(lambda: org_screened(platform), other_than=first)
            expect(screened).to_have_text(str(after), timeout=30_000)
            assert page.evaluate("window.__notReloaded") is True
            expect(page.locator("#announcer")).to_contain_text("New release")
            assert page.locator("#announcer").get_attribute("aria-live") == "polite"

            # the new team's row is published with its ten people; five more screened after
            # it are too few to change it, so the row is marked held, in words
            page.get_by_label("Break down by").select_option("team")
            by_team = panel.get_by_role("table", name=re.compile(
                r"Prevalence among people screened by team"))
            row = by_team.locator("tbody tr").filter(
                has=page.get_by_role("rowheader", name=team, exact=True))
            expect(row.locator("td").first.locator(".count")).to_have_text(
                str(LIVE_PEOPLE), timeout=30_000)
            expect(by_team.get_by_role("columnheader", name="Last changed")).to_be_visible()
            expect(row.locator("td.changed-at time")).to_be_visible()
            # the study's question (a): each of them was asked whether it was all right
            answers = page.locator("#enquiry-acceptability").get_by_role(
                "table", name=re.compile(r"Was it all right to be asked\? By team"))
            answered = answers.locator("tbody tr").filter(
                has=page.get_by_role("rowheader", name=team, exact=True))
            expect(answered.locator("td").first.locator(".count")).to_have_text(
                str(LIVE_PEOPLE), timeout=30_000)
            expect(page.locator("#enquiry-acceptability svg[role=img] rect").first
                   ).to_be_visible()
            not_asked = page.locator("#enquiry-not-asked").get_by_role(
                "table", name=re.compile(r"due but not made, and why, by team"))
            expect(not_asked.get_by_role(
                "columnheader", name="Staff trained in routine enquiry")).to_be_visible()
            # questions (b) and (c): the feasibility funnel, offers and what mentoring covered
            funnel = page.locator("#feasibility-funnel").get_by_role(
                "table", name=re.compile(r"The feasibility funnel"))
            trust_entered = funnel.locator("tbody tr").filter(
                has=page.get_by_role("rowheader", name="trust", exact=True))
            expect(trust_entered.locator("td").first.locator(".count")).not_to_have_text(
                "0", timeout=30_000)
            expect(funnel.get_by_role("columnheader", name="Followed up at 3 months")
                   ).to_be_visible()
            expect(page.locator("#mentoring-offers").get_by_role(
                "table", name=re.compile(r"Offers of peer mentoring"))).to_be_visible()
            expect(page.locator("#engagement-components").get_by_role(
                "table", name=re.compile(r"What the mentoring covered"))).to_be_visible()
            for _ in range(LIVE_MORE):
                response = httpx.post(platform.url("screening", "/v1/screenings"),
                                      json=platform.screening(team, **ONE_CELL),
                                      headers=platform.headers("trust", "clinician"),
                                      timeout=10)
                assert response.status_code == 201, response.text
            expect(row.locator(".held-badge")).to_be_visible(timeout=30_000)
            expect(row.locator("td").first.locator(".count")).to_have_text(str(LIVE_PEOPLE))
            expect(row.get_by_role("cell", name=re.compile(r"held: \S"))).to_have_count(1)
            expect(panel.locator(".release-rule")).to_contain_text("10 people")
            assert page.evaluate("window.__notReloaded") is True

            content = page.content()
            for record, subject in zip(records, subjects, strict=True):
                assert str(record["nhs_number"]) not in content
                assert subject not in content
            assert not [p for p in problems if "favicon" not in p], problems

            # an artefact of the run, kept with pytest's temporary directories
            screenshot = tmp_path / "dashboard.png"
            page.screenshot(path=str(screenshot), full_page=True)

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
    assert screenshot.stat().st_size > 20_000


# ------------------------------------------- in Chromium, over a stubbed reporting API
#
# The page and sign-in are the real service's; the JSON figures and the release stream are
# answered by Playwright from the fakes below, so the page is checked against the API's shape
# (issue 12: people, "changed_at", "held", "k", "held_rule", engagement by receiving and by
# referring organisation) whatever the running service's figures are.

K = 10
HELD_RULE = ("A figure changes only when at least 10 people have entered or left it since it "
             "was last published; until then the published value stands and the row is "
             "marked held.")
HELD_REASON = ("fewer than 10 people have entered or left some of this row's figures since "
               "they were last published, so those figures keep their published values")
MEAN_WITHHELD = ("fewer than 30 people have both an intake and an exit score in one mentoring "
                 "episode: Warwick advises against comparing means below that")
METHOD = ("Counts are of people, not events. Counts of 1 to 7 are shown as \"fewer than 8\"; "
          "0 is shown as 0; other counts are rounded to the nearest 5. " + HELD_RULE)


def count(n: int) -> dict[str, Any]:
    """A published count, as the API gives it."""
    if 0 < n <= 7:
        return {"value": None, "display": "fewer than 8", "suppressed": True}
    return {"value": n, "display": str(n), "suppressed": False}


def rate(n: int, of: int) -> dict[str, Any]:
    """A published count with its rate over ``of``."""
    if of <= 7 or 0 < n <= 7:
        return {**count(n), "rate": None, "lower": None, "upper": None, "withheld": True}
    return {**count(n), "rate": round(n / of, 4), "lower": round(n / of * 0.8, 4),
            "upper": round(min(1.0, n / of * 1.2), 4), "withheld": False}


def ago(**delta: float) -> str:
    """An ISO-8601 time so long before now (the page says how long ago)."""
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


class FakeReporting:
    """The reporting API's answers, in the shape issue 12 gave them."""

    def __init__(self) -> None:
        self.released_at = "2026-11-30T12:00:00+00:00"
        self.referred = 40
        self.trust_changed = ago(minutes=5)
        self.asked: list[dict[str, str]] = []

    def release(self, referred: int) -> None:
        """A new release in which trust's referrals changed."""
        self.released_at = datetime.now(UTC).isoformat()
        self.referred = referred
        self.trust_changed = self.released_at

    def tracked(self, row: dict[str, Any], changed_at: str | None, held: bool
                ) -> dict[str, Any]:
        return {**row, "changed_at": changed_at, "held": held,
                "held_reason": HELD_REASON if held else None}

    def engagement(self, group: str, name: str, referred: int, held: bool,
                   changed_at: str | None) -> dict[str, Any]:
        row: dict[str, Any] = {group: name, "referred": count(referred), "matched": count(30),
                               "waitlisted": count(5), "planned_endings": count(15),
                               "unplanned_endings": count(3), "active_mentees": count(10),
                               "median_days_to_match": {"value": 12.5, "withheld": False},
                               "attended_session": count(25), "missed_session": count(10)}
        row["swemwbs_change"] = (
            {"n": count(35), "mean": 4.2, "withheld_reason": None,
             "meaningful_improvement": rate(20, 35)} if not held else
            {"n": count(12), "mean": None, "withheld_reason": MEAN_WITHHELD,
             "meaningful_improvement": rate(5, 12)})
        return self.tracked(row, changed_at, held)

    def rows(self, kind: str, group: str) -> list[dict[str, Any]]:
        if kind == "engagement":
            names = (("gp-surgery", "trust") if group == "referred_by"
                     else ("idva-service", "trust"))
            return [self.engagement(group, names[0], 15, True, ago(hours=3)),
                    self.engagement(group, names[1], self.referred, False,
                                    self.trust_changed)]
        groups = ["2026-10", "2026-11"] if group == "month" else ["partner-a", "trust"]
        rows = []
        for held, value in zip((True, False), groups, strict=True):
            if kind == "prevalence":
                row = {group: value, "screened": count(60), "current_abuse": rate(15, 60),
                       "past_abuse": rate(20, 60), "either_abuse": rate(30, 60)}
            else:
                row = {group: value, "due": count(80), "screened": rate(60, 80),
                       "declined": count(10), "not_safe_to_ask": count(5),
                       "asked_in_private": rate(50, 60), "marac_referrals": count(0)}
            rows.append(self.tracked(row, None if held else ago(hours=3), held))
        return rows

    def answer(self, route: Any) -> None:
        """Fulfil one request of the page for figures."""
        url = urlsplit(route.request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        kind = url.path.rsplit("/", 1)[-1]
        self.asked.append({"kind": kind, **query})
        group, period = query.get("group_by", "org"), query.get("period", "last-12-months")
        body: dict[str, Any] = {"released_at": self.released_at, "group_by": group,
                                "period": period, "rows": self.rows(kind, group),
                                "method": METHOD, "k": K, "held_rule": HELD_RULE}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def stream(self, route: Any) -> None:
        """The release stream: one event, then the stream ends and the browser reconnects."""
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"},
                      body=f"retry: 300\n\nevent: release\n"
                           f"data: {json.dumps({'released_at': self.released_at})}\n\n")


@contextmanager
def stubbed_dashboard(platform: RunningPlatform, fake: FakeReporting
                      ) -> Iterator[tuple[Any, list[str]]]:
    """A signed-in page of the real service whose figures and releases come from ``fake``."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium package is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900},
                                          locale="en-GB", timezone_id="Europe/London")
            context.add_cookies([{"name": "peerlink_session", "value": viewer_session(platform),
                                  "url": reporting(platform, "/")}])
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda message: problems.append(message.text)
                    if message.type == "error" else None)
            page.route(re.compile(r"/v1/(prevalence|coverage|engagement)\?"), fake.answer)
            page.route(re.compile(r"/v1/releases/stream"), fake.stream)
            page.goto(reporting(platform, f"/dashboard?period={MONTH}&group_by=org"))
            yield page, problems
        finally:
            browser.close()


def row_of(table: Any, page: Any, name: str) -> Any:
    return table.locator("tbody tr").filter(
        has=page.get_by_role("rowheader", name=name, exact=True))


def test_the_dashboard_shows_people_when_rows_changed_and_held_rows(
        platform: RunningPlatform) -> None:
    from playwright.sync_api import expect

    fake = FakeReporting()
    with stubbed_dashboard(platform, fake) as (page, problems):
        # the funnel, people by the organisation receiving the referral
        funnel = page.locator("#engagement-funnel")
        table = funnel.get_by_role("table", name=re.compile(
            r"People referred for peer mentoring, by the organisation receiving the referral"))
        expect(table.locator("thead th")).to_have_text(
            ["Receiving organisation", "Referred", "Matched with a mentor", "Attended a session",
             "Planned endings", "Unplanned endings", "Active mentees", "Last changed"],
            timeout=30_000)
        expect(table.locator("caption")).to_contain_text("Counts are of people, not sessions")
        trust = row_of(table, page, "trust")
        expect(trust.locator("td .count")).to_have_text(
            ["40", "30", "25", "15", "fewer than 8", "10"])
        expect(funnel.locator("svg[role=img] rect").first).to_be_visible()
        expect(page.get_by_role("columnheader", name=re.compile("Sessions"))).to_have_count(0)
        waiting = funnel.get_by_role("table", name=re.compile(r"Waiting and missed sessions"))
        expect(row_of(waiting, page, "trust").locator("td .count")).to_have_text(
            ["fewer than 8", "10", "12.5"])

        # when each row last changed, and the held row marked in words
        changed = trust.locator("td.changed-at time")
        expect(changed).to_have_text("5 min ago")
        assert changed.get_attribute("datetime") == fake.trust_changed
        expect(trust.locator(".held-badge")).to_have_count(0)
        held = row_of(table, page, "idva-service")
        expect(held.locator("td.changed-at time")).to_have_text("3 h ago")
        badge = held.locator(".held-badge")
        expect(badge).to_be_visible()
        expect(badge).to_have_attribute("title", HELD_REASON)
        expect(badge.locator("[aria-hidden=true]")).to_have_text("held")
        expect(held.get_by_role("cell", name=f"3 h ago held: {HELD_REASON}", exact=True)
               ).to_have_count(1)
        expect(table.locator("caption")).to_contain_text("Rows marked held")

        # the release rule beside the method, said once
        expect(funnel.locator(".release-rule").first).to_have_text(f"Release rule: {HELD_RULE}")
        expect(funnel.locator(".method").first).to_contain_text("fewer than 8")
        expect(funnel.locator(".method").first).not_to_contain_text("marked held")

        # by the referring organisation, fetched as group_by=referred_by
        referrers = page.locator("#engagement-referrers").get_by_role("table", name=re.compile(
            r"People referred for peer mentoring, by the referring organisation"))
        expect(referrers.locator("thead th").first).to_have_text("Referring organisation")
        expect(row_of(referrers, page, "gp-surgery").locator("td .count").first
               ).to_have_text("15")
        expect(row_of(referrers, page, "gp-surgery").locator(".held-badge")).to_have_count(1)
        assert {"kind": "engagement", "group_by": "referred_by", "period": MONTH} in fake.asked

        # wellbeing: people with both scores, the mean or why it is withheld
        wellbeing = page.locator("#engagement-wellbeing")
        scores = wellbeing.get_by_role("table", name=re.compile(r"Wellbeing \(SWEMWBS\) change"))
        expect(row_of(scores, page, "trust").locator("td .count")).to_have_text(
            ["35", "+4.2 points", "20"])
        expect(row_of(scores, page, "idva-service").locator("td .count").nth(1)
               ).to_have_text("withheld")
        expect(wellbeing.locator(".note")).to_contain_text(f"Means withheld: {MEAN_WITHHELD}")
        expect(wellbeing.locator(".release-rule")).to_have_count(1)

        # every other table too: the column, "never" and the badge
        prevalence = page.locator("#prevalence-breakdown").get_by_role("table")
        expect(prevalence.get_by_role("columnheader", name="Last changed")).to_be_visible()
        partner = row_of(prevalence, page, "partner-a")
        expect(partner.locator("td.changed-at")).to_contain_text("never")
        expect(partner.get_by_role("cell", name=f"never held: {HELD_REASON}", exact=True)
               ).to_have_count(1)
        for panel in ("prevalence-trend", "coverage-trend", "coverage-breakdown"):
            expect(page.locator(f"#{panel}").get_by_role(
                "columnheader", name="Last changed")).to_have_count(1)
            expect(page.locator(f"#{panel} .release-rule")).to_have_count(1)

        # a release on the stream: the funnel changes in place, its row now changed just now
        page.evaluate("window.__notReloaded = true")
        fake.release(referred=50)
        expect(trust.locator("td .count").first).to_have_text("50", timeout=15_000)
        expect(trust.locator("td.changed-at time")).to_have_text("just now")
        expect(page.locator("#announcer")).to_contain_text("New release")
        assert page.evaluate("window.__notReloaded") is True
        assert not [p for p in problems if "favicon" not in p], problems

