"""Published figures: the months of a period, and prevalence grouped and controlled."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.reporting.domain.disclosure import DisclosurePolicy
from services.reporting.domain.figures import months_in, prevalence_rows, sum_by_group

POLICY = DisclosurePolicy()


@pytest.mark.parametrize(
    ("given_period", "given_today", "expected"),
    [
        pytest.param("last-12-months", date(2026, 3, 15),
                     {"2025-04", "2025-05", "2025-06", "2025-07", "2025-08", "2025-09",
                      "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"},
                     id="spans-a-year-end"),
        pytest.param("last-12-months", date(2025, 12, 31),
                     {f"2025-{m:02d}" for m in range(1, 13)}, id="december"),
        pytest.param("last-12-months", date(2026, 1, 1),
                     {"2026-01", *(f"2025-{m:02d}" for m in range(2, 13))}, id="january"),
        pytest.param("2025-07", date(2026, 3, 15), {"2025-07"}, id="one-month"),
    ],
)
def test_months_in(given_period: str, given_today: date, expected: set[str]) -> None:
    months = months_in(given_period, given_today)
    assert months == expected


def cell(measure: str, n: int, *, month: str = "2026-02", team: str = "north-cmht",
         **dims: str) -> dict[str, Any]:
    return {"measure": measure, "n": n, "month": month, "org": "trust", "team": team,
            "borough": "Camden", "gender": "female", "age_band": "25-34", **dims}


def test_sum_by_group_adds_cells_of_the_same_group_and_period() -> None:
    cells = [cell("screened", 3), cell("screened", 4, borough="Islington"),
             cell("screened", 100, month="2024-01"), cell("screened", 5, team="south")]
    totals = sum_by_group(cells, "team", {"2026-02"})
    assert {team: dict(m) for team, m in totals.items()} == {
        "north-cmht": {"screened": 7}, "south": {"screened": 5}}


def test_prevalence_20_screened_9_current() -> None:
    # given 20 people screened in one team, 9 with current abuse, 2 with past abuse
    cells = [cell("screened", 12), cell("screened", 8, gender="male"),
             cell("current_abuse", 9), cell("past_abuse", 2), cell("either_abuse", 10)]
    rows = prevalence_rows(cells, "team", {"2026-02"}, POLICY)
    assert len(rows) == 1
    row = rows[0]
    assert row["team"] == "north-cmht"
    assert row["screened"] == {"value": 20, "display": "20", "suppressed": False}
    assert row["current_abuse"]["display"] == "10"
    assert row["current_abuse"]["value"] == 10
    assert row["current_abuse"]["rate"] == 0.5
    assert row["current_abuse"]["withheld"] is False
    assert row["current_abuse"]["lower"] < 0.5 < row["current_abuse"]["upper"]
    assert row["past_abuse"]["display"] == "fewer than 8"
    assert row["past_abuse"]["suppressed"] is True
    assert row["past_abuse"]["withheld"] is True
    assert row["past_abuse"]["rate"] is None
    assert row["either_abuse"]["value"] == 10
    assert row["either_abuse"]["rate"] == 0.5


@pytest.mark.parametrize(
    ("given_cells", "given_months", "expected_groups"),
    [
        pytest.param([cell("screened", 20, team="a"), cell("due", 30, team="b")],
                     {"2026-02"}, ["a"], id="zero-screened-group-omitted"),
        pytest.param([cell("screened", 20, team="a"), cell("screened", 20, team="b",
                                                           month="2025-01")],
                     {"2026-02"}, ["a"], id="outside-period-ignored"),
        pytest.param([cell("screened", 20, team="b"), cell("screened", 20, team="a")],
                     {"2026-02"}, ["a", "b"], id="sorted-by-group"),
        pytest.param([cell("screened", 20, team="a"), cell("screened", 20, team="b",
                                                           month="2025-01")],
                     None, ["a", "b"], id="no-period-filter"),
        pytest.param([cell("screened", 0, team="a")], {"2026-02"}, [], id="explicit-zero"),
    ],
)
def test_prevalence_groups(given_cells: list[dict[str, Any]], given_months: set[str] | None,
                           expected_groups: list[str]) -> None:
    rows = prevalence_rows(given_cells, "team", given_months, POLICY)
    assert [r["team"] for r in rows] == expected_groups


def test_cells_outside_the_period_do_not_change_the_figures() -> None:
    inside = [cell("screened", 20), cell("current_abuse", 9)]
    outside = [cell("screened", 500, month="2025-01"), cell("current_abuse", 400,
                                                            month="2025-01")]
    assert (prevalence_rows(inside + outside, "team", {"2026-02"}, POLICY)
            == prevalence_rows(inside, "team", {"2026-02"}, POLICY))
    row = prevalence_rows(inside + outside, "team", {"2026-02"}, POLICY)[0]
    assert row["screened"]["value"] == 20


@pytest.mark.parametrize(
    ("given_screened", "given_current", "expected_screened", "expected_current"),
    [
        pytest.param(5, 2, "fewer than 8", {"display": "fewer than 8", "withheld": True},
                     id="small-group-all-withheld"),
        pytest.param(20, 0, "20", {"display": "0", "rate": 0.0, "withheld": False},
                     id="true-zero-shown"),
        pytest.param(48, 12, "50", {"display": "10", "rate": 0.2, "withheld": False},
                     id="rate-from-rounded-figures"),
    ],
)
def test_prevalence_controls_each_figure(given_screened: int, given_current: int,
                                         expected_screened: str,
                                         expected_current: dict[str, Any]) -> None:
    cells = [cell("screened", given_screened), cell("current_abuse", given_current)]
    row = prevalence_rows(cells, "team", None, POLICY)[0]
    assert row["screened"]["display"] == expected_screened
    for key, value in expected_current.items():
        assert row["current_abuse"][key] == value


@pytest.mark.parametrize("given_group", ["org", "borough", "gender", "age_band"])
def test_prevalence_groups_by_any_dimension(given_group: str) -> None:
    rows = prevalence_rows([cell("screened", 20)], given_group, None, POLICY)
    assert [r[given_group] for r in rows] == [cell("screened", 20)[given_group]]
