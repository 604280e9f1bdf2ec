"""The study's research extract and figures: the pseudonym, each person's row, the share of
sessions covering each component, and figures under disclosure control."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

import pytest

from services.reporting.bootstrap import ResearchSettings, research_key, research_sponsor
from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules
from services.reporting.domain.research import (
    extract_rows,
    latest_matches,
    quarter_of,
    research_figures,
    sessions_covering,
    study_pseudonym,
)
from services.reporting.service_layer.research import check_sponsor
from shared.auth import NotPermitted, Principal
from shared.events.mentoring import SessionComponentsRecorded
from shared.settings import Organisation, PlatformSettings
from tests.unit.test_reporting_people import Log, journey, referral, screening

KEY = bytes(range(32))
POLICY = DisclosurePolicy(suppress_upto=7, round_to=5, k=10)


def components(log: Log, person: str, match_id: str, day: int, *codes: str) -> None:
    log.add(person, SessionComponentsRecorded(
        session_id=f"s-{person}-{day}", match_id=match_id, org="partner-a",
        held_on=date(2026, 11, day), components=codes))


def test_the_pseudonym_is_the_studys_own_and_never_the_subject_reference() -> None:
    first = study_pseudonym(KEY, "subject-1")
    assert first == study_pseudonym(KEY, "subject-1")
    assert first.startswith("S-") and len(first) == 26
    assert "subject-1" not in first
    assert first != study_pseudonym(KEY, "subject-2")
    assert first != study_pseudonym(bytes(32), "subject-1")  # another study, another name


def test_sessions_are_counted_once_each_per_component() -> None:
    log = Log()
    journey(log, "p1", "r1")
    components(log, "p1", "m-r1", 16, "safety-planning")
    components(log, "p1", "m-r1", 23, "safety-planning", "practical-help")
    assert sessions_covering(log.facts) == {
        "p1": {"sessions": 2, "safety_planning": 2, "practical_help": 1}}


def test_each_person_is_one_row_under_their_pseudonym_with_the_same_columns() -> None:
    log = Log()
    log.add("p1", screening(current=True))
    journey(log, "p1", "r1", intake=19.25, exit_=24.75, planned=True)
    components(log, "p1", "m-r1", 16, "safety-planning")
    log.add("p2", screening())

    rows = extract_rows(log.facts, KEY)

    assert [r["study_id"] for r in rows] == sorted(study_pseudonym(KEY, p) for p in ("p1", "p2"))
    mentee = next(r for r in rows if r["study_id"] == study_pseudonym(KEY, "p1"))
    other = next(r for r in rows if r["study_id"] == study_pseudonym(KEY, "p2"))
    assert set(mentee) == set(other)
    assert (mentee["org"], mentee["gender"], mentee["age_band"], mentee["entry_quarter"]) == \
        ("trust", "female", "25-34", "2026-Q4")
    assert "month" not in mentee  # a quarter, not a month: person-level rows narrow less
    assert (mentee["asked"], mentee["disclosed"], mentee["matched"],
            mentee["planned_ending"]) == (1, 1, 1, 1)
    assert (mentee["episode_referred"], mentee["episode_matched"]) == (1, 1)
    assert mentee["episode_swemwbs_change"] == 5.5
    assert (mentee["sessions_with_components"], mentee["sessions_covering_safety_planning"]) \
        == (1, 1)
    assert (other["asked"], other["disclosed"], other["matched"]) == (1, 0, 0)
    assert other["episode_swemwbs_change"] is None
    assert other["sessions_covering_safety_planning"] == 0
    assert not any(str(value).startswith("p") for row in rows for value in row.values())


def test_sessions_are_those_of_the_episode_the_row_describes() -> None:
    log = Log()
    journey(log, "p1", "r1", planned=True)
    components(log, "p1", "m-r1", 16, "safety-planning")
    components(log, "p1", "m-r1", 23, "practical-help")
    log.add("p1", referral("r2", date(2026, 11, 25)))  # a second episode, not yet matched
    [row] = extract_rows(log.facts, KEY)
    assert (row["episode_matched"], row["episode_components_recorded"]) == (0, 0)
    assert row["sessions_with_components"] == 0  # the first episode's sessions are not its
    assert latest_matches(log.facts) == {"p1": set()}


@pytest.mark.parametrize(("month", "quarter"), [("2026-01", "2026-Q1"), ("2026-03", "2026-Q1"),
                                                ("2026-04", "2026-Q2"), ("2026-12", "2026-Q4"),
                                                ("unknown", "unknown")])
def test_quarter_of(month: str, quarter: str) -> None:
    assert quarter_of(month) == quarter


def test_no_team_borough_or_date_is_in_a_row() -> None:
    log = Log()
    journey(log, "p1", "r1", planned=True)
    [row] = extract_rows(log.facts, KEY)
    assert not {"team", "borough", "referred_by"} & set(row)
    assert not any(isinstance(value, date) for value in row.values())


def test_research_figures_are_disclosure_controlled_with_session_components() -> None:
    log = Log()
    for n in range(12):
        journey(log, f"p{n}", f"r{n}", planned=True)
        components(log, f"p{n}", f"m-r{n}", 16, "safety-planning", "goals-and-next-steps")
        components(log, f"p{n}", f"m-r{n}", 23, "safety-planning")

    [row] = research_figures(log.facts, "engagement", "org", POLICY, OutcomeRules())

    assert (row["org"], row["matched"]["display"]) == ("partner-a", "10")
    assert row["sessions_with_components"]["display"] == "25"  # 24 sessions, rounded to 5
    assert row["session_components"]["safety_planning"]["rate"] == 1.0
    assert row["session_components"]["goals_and_next_steps"]["rate"] == round(10 / 25, 4)
    assert row["components"]["goals_and_next_steps"]["rate"] == 1.0  # every episode had it


def test_a_few_peoples_sessions_are_withheld_with_them() -> None:
    log = Log()
    journey(log, "p1", "r1", planned=True)
    for day in range(1, 13):
        components(log, "p1", "m-r1", day, "safety-planning")
    [row] = research_figures(log.facts, "engagement", "org", POLICY, OutcomeRules())
    assert row["referred"]["display"] == "fewer than 8"
    assert row["session_components"] == {}
    assert row["sessions_with_components"]["suppressed"] is True
    assert row["sessions_with_components"]["value"] is None


def test_a_small_research_figure_is_suppressed() -> None:
    log = Log()
    for n in range(3):
        log.add(f"p{n}", screening(current=True))
    [row] = research_figures(log.facts, "feasibility", "org", POLICY, OutcomeRules())
    assert row["asked"]["display"] == "fewer than 8"
    assert row["asked"]["suppressed"] is True


def test_production_refuses_to_start_without_a_study_key(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PEERLINK_RESEARCH_PSEUDONYM_KEY", "PEERLINK_RESEARCH_PSEUDONYM_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = PlatformSettings(env="production", var_dir=tmp_path)
    with pytest.raises(ValueError, match=r"development-research-pseudonym.*production"):
        research_key(settings, ResearchSettings())
    monkeypatch.setenv("PEERLINK_RESEARCH_PSEUDONYM_KEY", base64.b64encode(KEY).decode())
    assert research_key(settings, ResearchSettings()) == KEY


@pytest.mark.parametrize(("organisations", "configured", "sponsor"), [
    pytest.param({"trust": "nhs-trust", "partner-a": "dva-partner"}, None, "trust",
                 id="the-one-trust"),
    pytest.param({"t1": "nhs-trust", "t2": "nhs-trust"}, None, None, id="two-trusts-none"),
    pytest.param({"t1": "nhs-trust", "t2": "nhs-trust"}, "t2", "t2", id="configured"),
])
def test_the_sponsor_is_the_configured_or_the_only_trust(
        organisations: dict[str, str], configured: str | None, sponsor: str | None) -> None:
    settings = PlatformSettings(organisations={o: Organisation(kind=k, name=o)
                                               for o, k in organisations.items()})
    assert research_sponsor(settings, ResearchSettings(sponsor=configured)) == sponsor


def test_a_sponsor_that_is_not_a_trust_is_refused() -> None:
    with pytest.raises(ValueError, match="PEERLINK_RESEARCH_SPONSOR"):
        research_sponsor(PlatformSettings(), ResearchSettings(sponsor="partner-a"))


def test_research_data_is_for_the_sponsors_staff_only() -> None:
    check_sponsor(Principal("r", "trust", frozenset({"researcher"})), "trust")
    for caller_org, sponsor in (("trust", None), ("other-trust", "trust")):
        with pytest.raises(NotPermitted):
            check_sponsor(Principal("r", caller_org, frozenset({"researcher"})), sponsor)
