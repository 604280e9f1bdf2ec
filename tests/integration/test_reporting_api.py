"""The reporting API over HTTP: people counted once, the release rule in every body, groupings
each table accepts, and CSV of the same rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import httpx
import pytest

from services.reporting.service_layer.read_model import apply_event, publish_release
from shared.events.envelope import CloudEvent
from shared.events.screening import ScreeningCompleted
from shared.identity import new_subject_reference
from tests.integration.test_reporting_sessions import (  # noqa: F401 - the fixture
    Reporting,
    reporting,
)


def screen(reporting: Reporting, subject: str, team: str, current: bool) -> None:  # noqa: F811
    payload = ScreeningCompleted(
        screening_id=new_subject_reference(), org="trust", team=team, borough="camden",
        gender="female", age_band="25-34", asked_on=date(2026, 11, 2), asked_by_role="nurse",
        training_level=2, private=True, hark_score=int(current), current_abuse=current,
        past_abuse="no", disclosed=current)
    with reporting.adapters.database.unit_of_work() as uow:
        apply_event(uow, CloudEvent.wrap(payload, source="/peerlink/screening",
                                         subject=subject), payload)


def get(reporting: Reporting, path: str, **params: str) -> httpx.Response:  # noqa: F811
    token = reporting.token("ops-viewer")
    return httpx.get(f"{reporting.url}{path}", params=params, timeout=10,
                     headers={"Authorization": f"Bearer {token}"})


def test_people_screened_again_count_once_and_the_body_states_the_rule(
        reporting: Reporting) -> None:  # noqa: F811
    people = [new_subject_reference() for _ in range(10)]
    for subject in people:
        screen(reporting, subject, "north", current=False)
        screen(reporting, subject, "north", current=True)  # again: the latest counts
    publish_release(reporting.adapters.database, reporting.adapters.policy,
                    reporting.adapters.outcome_rules, now=datetime.now(UTC))
    body = get(reporting, "/v1/prevalence", group_by="team", period="2026-11").json()
    [row] = body["rows"]
    assert row["screened"]["value"] == 10
    assert (row["current_abuse"]["value"], row["current_abuse"]["rate"]) == (10, 1.0)
    assert body["k"] == 10
    assert "at least 10 people have entered or left" in body["held_rule"]
    assert body["method"].startswith("People screened (asked) in the period")

    text = get(reporting, "/v1/prevalence", group_by="team", period="2026-11",
               format="csv").text
    [record] = list(csv.DictReader(io.StringIO(text)))
    assert (record["team"], record["screened"], record["held"]) == ("north", "10", "False")


@pytest.mark.parametrize(("path", "status"), [("/v1/prevalence", 422), ("/v1/coverage", 422),
                                              ("/v1/engagement", 200)])
def test_only_engagement_groups_by_the_referring_organisation(
        reporting: Reporting, path: str, status: int) -> None:  # noqa: F811
    response = get(reporting, path, group_by="referred_by")
    assert response.status_code == status, response.text
    if status == 422:
        assert [d["field"] for d in response.json()["details"]] == ["group_by"]
