"""The demo's traffic against the real platform, every service its own process: every step it
takes is accepted by the APIs as the role it uses, and its people reach the reporting figures
(coverage with its denominator, referrals, matches and SWEMWBS changes)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ops import demo
from tests.support.platform import RunningPlatform, running_platform, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("demo"), "sqlite") as p:
        yield p


def figures(platform: RunningPlatform, table: str) -> dict[str, dict[str, Any]]:
    """A reporting table by organisation over the last 12 months, rows by organisation."""
    response = httpx.get(platform.url("reporting", f"/v1/{table}"),
                         params={"group_by": "org", "period": "last-12-months"},
                         headers=platform.headers("trust", "ops-viewer"), timeout=5)
    response.raise_for_status()
    return {row["org"]: row for row in response.json()["rows"]}


def value(row: dict[str, Any] | None, *path: str) -> int:
    """A published count (0 while suppressed, held at 0 or absent)."""
    for key in path:
        row = (row or {}).get(key)
    return int((row or {}).get("value") or 0)


def test_the_demo_traffic_is_accepted_and_reaches_every_table(platform: RunningPlatform
                                                              ) -> None:
    tokens = demo.Tokens(platform.authority, platform.settings.token_lifetime_seconds)
    pace = demo.Pace(interval=0.5, step_gap=(0.0, 0.0), referred_share=1.0)
    with httpx.Client(timeout=10) as client:
        traffic = demo.Traffic(demo.Api(client, platform.settings, tokens), platform.settings,
                               random.Random(12), pace)
        traffic.partners = ["partner-a"]  # one partner, so that its figures move by 10 soon
        for _ in range(60):
            traffic.tick()
        deadline = time.monotonic() + 60
        while traffic.journeys and time.monotonic() < deadline:
            traffic.advance(time.monotonic() + 1)

        tally = traffic.tally
        assert tally.failures == 0, tally.line()
        assert traffic.journeys == [], tally.line()
        assert tally.referred >= 15 and tally.matched == tally.referred, tally.line()
        assert tally.intake_and_exit >= 10 and tally.planned_endings >= 5, tally.line()
        assert tally.unplanned_endings >= 1 and tally.due > tally.screened, tally.line()
        assert 0 < tally.research < tally.referred, tally.line()

        def research_extract() -> dict[str, Any]:
            response = httpx.get(platform.url("reporting", "/v1/research/extract"),
                                 headers=platform.headers("trust", "researcher"), timeout=10)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

        # the people who took part in the research, each once, and nobody else
        # (with their mentoring, which the partner recorded under its own research consent)
        extract = wait_for(lambda: (body := research_extract())
                           and body["people"] == tally.research
                           and all(row["episode_matched"] for row in body["rows"]) and body,
                           timeout=90)
        assert len({row["study_id"] for row in extract["rows"]}) == tally.research

        def moved_on(table: str, org: str, *enough: tuple[tuple[str, ...], int]
                     ) -> dict[str, Any]:
            """The table's row for ``org`` once each figure reaches its count, the demo going
            on meanwhile as it does when it runs: a row the release rule looked at (and held
            a figure of, for its overlaps with other groupings) is looked at again only after
            K more of its people have had events."""
            seen: list[dict[str, Any] | None] = [None]

            def reached() -> dict[str, Any] | None:
                seen[0] = row = figures(platform, table).get(org)
                if all(value(row, *path) >= least for path, least in enough):
                    return row
                for _ in range(4):
                    traffic.tick()
                return None

            try:
                return wait_for(reached, timeout=180)  # type: ignore[no-any-return]
            except AssertionError as late:
                raise AssertionError(f"{table} for {org} last seen: {seen[0]}") from late

        coverage = moved_on("coverage", "trust", (("screened",), 10))
        assert value(coverage, "due") > value(coverage, "screened")
        engagement = moved_on("engagement", "partner-a", (("matched",), 15),
                              (("swemwbs_change", "n"), 10), (("planned_endings",), 5))
        assert value(engagement, "planned_endings") <= value(engagement, "matched")
        assert traffic.tally.failures == 0, traffic.tally.line()
