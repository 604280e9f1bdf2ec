"""Releases that resist differencing, on the real broker and every service its own process.

People are screened one at a time into fresh cells (new teams and boroughs, with genders, age
bands and two months), some are screened again and some withdraw from evaluation; after each
step the test waits for a release that includes it and reads every grouping and period of
prevalence through the API, as an insider who knows who was screened when and what they said.
No displayed change between two releases may come down to one person (tests/support/
differencing.py), and the release rule runs at its default K of 10.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from services.reporting.adapters.tables import contributions, releases
from services.reporting.domain.people import LAST_12_MONTHS, PREVALENCE, TABLE_GROUPS
from tests.support.differencing import (
    Audit,
    FigureKey,
    Screening,
    covering_unions,
    displayed_figures,
    overlapping_pairs,
    prevalence_truth,
)
from tests.support.platform import RunningPlatform, running_platform, wait_for

pytestmark = pytest.mark.kafka
STEPS = 210
MONTHS = ("2026-10", "2026-11")
GENDERS = ("female", "male", "non-binary")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54")


@pytest.fixture(scope="module")
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunningPlatform]:
    with running_platform(request, tmp_path_factory.mktemp("differencing"), "sqlite",
                          reporting_release_seconds="0.25") as running:
        yield running


class Insider:
    """Posts one person's step at a time and reads every release after it."""

    def __init__(self, platform: RunningPlatform, seed: int) -> None:
        self.platform = platform
        self.rng = random.Random(seed)
        tag = uuid.uuid4().hex[:6]
        self.teams = [f"diff-team-{tag}-{n}" for n in range(3)]
        self.boroughs = [f"diff-borough-{tag}-{n}" for n in range(3)]
        self.people: dict[str, list[Screening]] = {}
        self.numbers: dict[str, str] = {}
        self.audit = Audit()
        self.overlaps: set[Any] = set()
        self.unions: set[Any] = set()
        self.client = httpx.Client(timeout=10)
        self.engine = create_engine(platform.settings.database_url("reporting"))
        self.clinician = platform.headers("trust", "clinician")
        self.viewer = platform.headers("trust", "ops-viewer")

    def stored(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(contributions))
                       .scalar_one())

    def latest_release(self) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(select(func.max(releases.c.released_at))).scalar()

    def screening(self) -> Screening:
        rng = self.rng
        team = rng.randrange(3)
        borough = team if rng.random() < 0.8 else rng.randrange(3)  # teams sit in boroughs
        return Screening(self.teams[team], self.boroughs[borough], rng.choice(GENDERS),
                         rng.choice(AGE_BANDS),
                         date(2026, int(rng.choice(MONTHS)[-2:]), rng.randrange(1, 29)),
                         rng.random() < 0.35, rng.random() < 0.3, rng.random() < 0.9)

    def screen(self, nhs_number: str, s: Screening) -> str:
        body = self.platform.screening(
            s.team, nhs_number=nhs_number, borough=s.borough, gender=s.gender,
            age_band=s.age_band, asked_on=s.asked_on.isoformat(), private=s.private,
            hark={"humiliated": s.current, "afraid": False, "raped": False, "kicked": False},
            past_abuse="yes" if s.past else "no")
        response = self.client.post(self.platform.url("screening", "/v1/screenings"),
                                    json=body, headers=self.clinician)
        assert response.status_code == 201, response.text
        return str(response.json()["subject_id"])

    def step(self) -> None:
        before = self.stored()
        roll = self.rng.random()
        if roll < 0.8 or len(self.people) < 12:
            number = next(self.platform.numbers)
            s = self.screening()
            subject = self.screen(number, s)
            self.people[subject], self.numbers[subject] = [s], number
        elif roll < 0.93:
            subject = self.rng.choice(sorted(self.people))
            s = self.screening()
            self.screen(self.numbers[subject], s)
            self.people[subject].append(s)
        else:
            subject = self.rng.choice(sorted(self.people))
            response = self.client.post(
                self.platform.url("consent", f"/v1/subjects/{subject}/withdrawals"),
                json={"purposes": ["evaluation"], "method": "verbal"}, headers=self.clinician)
            assert response.status_code in (200, 201, 202), response.text
            del self.people[subject]
        # two local queries each poll: looked at often, so the 210 steps wait little
        wait_for(lambda: self.stored() != before, timeout=30, interval=0.03)
        applied_by = self.latest_release()
        wait_for(lambda: (latest := self.latest_release()) is not None
                 and (applied_by is None or latest > applied_by), timeout=30, interval=0.03)
        self.read_release()

    def read_release(self) -> None:
        displayed: dict[FigureKey, Any] = {}
        for group_by in TABLE_GROUPS[PREVALENCE]:
            for period in (LAST_12_MONTHS, *MONTHS):
                response = self.client.get(
                    self.platform.url("reporting", "/v1/prevalence"),
                    params={"group_by": group_by, "period": period}, headers=self.viewer)
                response.raise_for_status()
                displayed.update(displayed_figures(PREVALENCE, group_by, period,
                                                   response.json()["rows"]))
        self.audit.observe(prevalence_truth(self.people, MONTHS), displayed)
        self.overlaps |= overlapping_pairs(self.audit)
        self.unions |= covering_unions(self.audit)


def test_no_change_between_two_releases_comes_down_to_one_person(
        platform: RunningPlatform) -> None:
    insider = Insider(platform, seed=12)
    try:
        for _ in range(STEPS):
            insider.step()
    finally:
        insider.client.close()
        insider.engine.dispose()
    audit = insider.audit
    print(f"real broker: {audit.report()}; pairs of figures in two groupings that differ by "
          f"one person and show different values: {len(insider.overlaps)}; figures one person "
          f"from the figures of another grouping covering them: {len(insider.unions)}")
    assert audit.steps >= 200
    assert len(audit.changes) > 50  # the figures stayed live
    assert audit.attributable == []
    assert min(audit.changes) >= 10
    assert insider.overlaps == set()
    assert insider.unions == set()
