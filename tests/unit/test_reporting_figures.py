"""Published rows under disclosure control: rates from rounded counts, rows never published
left out, held rows saying why, medians and means withheld over small groups."""

from __future__ import annotations

from typing import Any

import pytest

from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import OutcomeRules, rows_of, swemwbs_change
from services.reporting.domain.people import (
    COVERAGE,
    ENGAGEMENT,
    FEASIBILITY,
    OFFERS,
    PREVALENCE,
)
from services.reporting.domain.release_rule import summary

POLICY = DisclosurePolicy()
RULES = OutcomeRules()


def published(group: str = "north", held: bool = False, **figures: Any) -> dict[str, Any]:
    return {"group": group, "changed_at": "2026-11-30T12:00:00+00:00", "held": held,
            "figures": {m: (v if isinstance(v, dict) else {"n": v}) for m, v in figures.items()}}


def test_prevalence_20_screened_9_current_rates_come_from_rounded_counts() -> None:
    [row] = rows_of(PREVALENCE, "team", [published(screened=20, current_abuse=9,
                                                   past_abuse=5, either_abuse=11)],
                    POLICY, RULES, 10)
    assert row["team"] == "north"
    assert row["screened"]["display"] == "20"
    assert (row["current_abuse"]["display"], row["current_abuse"]["rate"]) == ("10", 0.5)
    assert row["past_abuse"]["display"] == "fewer than 8"
    assert row["past_abuse"]["withheld"] is True
    assert row["changed_at"] == "2026-11-30T12:00:00+00:00"
    assert (row["held"], row["held_reason"]) == (False, None)


def test_a_held_row_says_why() -> None:
    [row] = rows_of(PREVALENCE, "org", [published(held=True, screened=10)], POLICY, RULES, 10)
    assert row["held"] is True
    assert "fewer than the 10 it takes" in row["held_reason"]


def test_a_row_never_published_above_zero_is_left_out() -> None:
    rows = rows_of(PREVALENCE, "team", [published(group="new", held=True),
                                        published(group="old", screened=15)],
                   POLICY, RULES, 10)
    assert [r["team"] for r in rows] == ["old"]


def test_coverage_screened_is_a_rate_over_people_due() -> None:
    [row] = rows_of(COVERAGE, "org", [published(due=24, screened=20, declined=2,
                                                asked_in_private=18, marac_referrals=10)],
                    POLICY, RULES, 10)
    assert (row["due"]["display"], row["screened"]["rate"]) == ("25", 0.8)
    assert row["declined"]["display"] == "fewer than 8"
    assert row["not_safe_to_ask"]["display"] == "0"
    assert row["asked_in_private"]["rate"] == pytest.approx(20 / 20)
    assert row["marac_referrals"]["display"] == "10"


def test_reasons_not_asked_are_shares_of_the_people_not_asked_from_rounded_counts() -> None:
    [row] = rows_of(COVERAGE, "team", [published(
        due=40, not_asked=22, not_asked_no_private_space=12, not_asked_no_time=6,
        not_asked_too_unwell=4)], POLICY, RULES, 10)
    assert row["not_asked"]["display"] == "20"
    assert (row["not_asked_no_private_space"]["display"],
            row["not_asked_no_private_space"]["rate"]) == ("10", 0.5)
    assert row["not_asked_no_time"]["display"] == "fewer than 8"
    assert row["not_asked_no_time"]["withheld"] is True
    assert row["not_asked_other"]["display"] == "0"


def test_acceptability_is_a_share_of_those_who_answered_and_comfort_of_those_who_rated() -> None:
    [row] = rows_of(COVERAGE, "org", [published(
        acceptability_answered=31, found_acceptable=24, acceptable_unsure=5, not_acceptable=2,
        comfort_rated=20, comfortable=16)], POLICY, RULES, 10)
    assert row["acceptability_answered"]["display"] == "30"
    assert row["found_acceptable"]["rate"] == round(25 / 30, 4)
    assert row["acceptable_unsure"]["display"] == "fewer than 8"
    assert row["not_acceptable"]["withheld"] is True
    assert (row["comfortable"]["display"], row["comfortable"]["rate"]) == ("15", 0.75)


def test_a_row_of_people_only_answering_acceptability_is_a_coverage_row() -> None:
    assert rows_of(COVERAGE, "org", [published(acceptability_answered=9)], POLICY, RULES, 10)
    assert rows_of(COVERAGE, "org", [published(comfort_rated=9)], POLICY, RULES, 10) == []


@pytest.mark.parametrize(("waits", "median"), [([5] * 7, None), ([1, 2, 3, 4, 5, 6, 7, 30], 4.5)])
def test_the_median_days_to_match_is_withheld_over_small_groups(waits: list[int],
                                                                median: float | None) -> None:
    days = summary("days_to_match", {f"p{i}": w for i, w in enumerate(waits)}, 3.0)
    [row] = rows_of(ENGAGEMENT, "org", [published(referred=len(waits), matched=len(waits),
                                                  days_to_match=days)], POLICY, RULES, 10)
    assert row["median_days_to_match"] == {"value": median, "withheld": median is None}


@pytest.mark.parametrize(("changes", "shown"), [([300] * 29, False), ([300] * 30, True)])
def test_the_mean_swemwbs_change_needs_30_people(changes: list[int], shown: bool) -> None:
    change = summary("swemwbs_change", {f"p{i}": c for i, c in enumerate(changes)}, 3.0)
    result = swemwbs_change(change, POLICY, RULES)
    assert (result["mean"] is not None) is shown
    assert (result["withheld_reason"] is None) is shown
    if shown:
        assert result["mean"] == 3.0


def test_a_meaningful_improvement_is_at_least_the_threshold() -> None:
    changes = [300] * 10 + [299] * 10  # 3.00 and 2.99 metric points
    change = summary("swemwbs_change", {f"p{i}": c for i, c in enumerate(changes)}, 3.0)
    result = swemwbs_change(change, POLICY, RULES)
    assert result["n"]["display"] == "20"
    assert result["meaningful_improvement"]["display"] == "10"
    assert result["meaningful_improvement"]["rate"] == 0.5


def test_the_funnel_row_has_every_stage() -> None:
    [row] = rows_of(ENGAGEMENT, "referred_by", [published(
        group="trust", referred=40, matched=35, attended_session=30, planned_endings=20,
        unplanned_endings=10)], POLICY, RULES, 10)
    stages = [row[k]["value"] for k in ("referred", "matched", "attended_session")]
    assert stages == [40, 35, 30]
    assert row["referred_by"] == "trust"
    assert "sessions_attended" not in row


def test_the_feasibility_funnel_gives_shares_only_where_people_are_nested() -> None:
    [row] = rows_of(FEASIBILITY, "org", [published(
        due=40, asked=31, disclosed=12, referred=20, matched=16, attended_session=14,
        planned_ending=9, followed_up_3_months=8, not_asked=9)], POLICY, RULES, 10)
    assert row["due"]["display"] == "40" and "rate" not in row["due"]
    assert (row["disclosed"]["display"], row["disclosed"]["rate"]) == ("10", round(10 / 30, 4))
    assert "rate" not in row["referred"]  # people enter at a referral too
    assert row["matched"]["rate"] == round(15 / 20, 4)
    assert row["followed_up_3_months"]["rate"] == round(10 / 15, 4)
    assert row["followed_up_12_months"]["display"] == "0"
    assert row["lost"]["not_asked"]["display"] == "10"
    assert row["lost"]["unplanned_ending"]["display"] == "0"


def test_offers_are_shares_of_the_offers_and_reasons_of_those_declined() -> None:
    [row] = rows_of(OFFERS, "team", [published(
        offered=30, offer_accepted=18, offer_declined=11, offer_undecided=1,
        offer_declined_has_other_support=9, offer_declined_no_time=2)], POLICY, RULES, 10)
    assert row["offered"]["display"] == "30"
    assert row["offer_accepted"]["rate"] == round(20 / 30, 4)
    assert row["offer_undecided"]["display"] == "fewer than 8"
    assert (row["offer_declined_has_other_support"]["display"],
            row["offer_declined_has_other_support"]["rate"]) == ("10", 1.0)
    assert row["offer_declined_no_time"]["withheld"] is True


def test_an_episodes_components_feedback_and_harms_are_shares_of_their_parents() -> None:
    [row] = rows_of(ENGAGEMENT, "org", [published(
        referred=30, matched=26, attended_session=24, components_recorded=21,
        component_safety_planning=19, component_practical_help=3, feedback_given=12,
        helped_a_lot=10, adverse_event=2, followed_up_6_months=11)], POLICY, RULES, 10)
    assert row["components_recorded"]["rate"] == round(20 / 25, 4)
    assert row["components"]["safety_planning"]["rate"] == round(20 / 20, 4)
    assert row["components"]["practical_help"]["display"] == "fewer than 8"
    assert set(row["components"]) == {"safety_planning", "practical_help"}
    assert row["helped_a_lot"]["rate"] == round(10 / 10, 4)
    assert row["adverse_event"]["display"] == "fewer than 8"
    assert row["serious_adverse_event"]["withheld"] is True
    assert row["followed_up_6_months"]["rate"] == round(10 / 25, 4)
