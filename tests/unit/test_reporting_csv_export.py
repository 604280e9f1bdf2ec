"""Reporting CSV: flattened as the API shows it, and no cell a spreadsheet would evaluate."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from services.reporting.entrypoints.csv_export import to_csv

PAYLOAD = "=cmd|' /C calc'!A0"


def _read(text: str) -> list[dict[str, str]]:
    """The CSV as a client we did not write reads it: the standard library's reader."""
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _count(display: str, **extra: Any) -> dict[str, Any]:
    return {"value": None, "display": display, "suppressed": True, **extra}


def test_a_formula_as_a_team_label_comes_back_as_text() -> None:
    [row] = _read(to_csv([{"team": PAYLOAD, "screened": _count("fewer than 8")}]))
    assert row == {"team": "'" + PAYLOAD, "screened": "fewer than 8"}


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"],
                         ids=["equals", "plus", "minus", "at", "tab", "carriage-return"])
def test_every_dangerous_leading_character_is_neutralised_in_cells_and_headers(
        lead: str) -> None:
    text = to_csv([{"team": f"{lead}1+1", f"{lead}name": "x",
                    "nested": {f"{lead}inner": "y"}, "count": _count(f"{lead}2")}])
    reader = csv.reader(io.StringIO(text, newline=""))
    header, row = list(reader)
    assert header == ["team", f"'{lead}name", "nested_" + f"{lead}inner", "count"]
    assert row == [f"'{lead}1+1", "x", "y", f"'{lead}2"]


def test_safe_text_is_unchanged() -> None:
    [row] = _read(to_csv([{"team": "north-cmht", "borough": "St. Mary's (East)",
                           "note": "a=b", "spaced": " =not first"}]))
    assert row == {"team": "north-cmht", "borough": "St. Mary's (East)", "note": "a=b",
                   "spaced": " =not first"}


def test_numbers_are_written_as_numbers_but_numeric_text_is_neutralised() -> None:
    text = to_csv([{"team": "a", "mean": -4.12, "delta": -3, "zero": 0, "text": "-1",
                    "swemwbs_change": {"n": _count("10"), "mean": -4.12,
                                       "meaningful_improvement": {
                                           "rate": 0.25, "lower": -0.0, "upper": 0.5,
                                           "display": "25%"}}}])
    [row] = _read(text)
    assert row["mean"] == row["swemwbs_change_mean"] == "-4.12"
    assert float(row["mean"]) == -4.12
    assert (row["delta"], row["zero"], row["text"]) == ("-3", "0", "'-1")
    assert row["swemwbs_change_n"] == "10"
    assert row["swemwbs_change_meaningful_improvement"] == "25%"
    assert row["swemwbs_change_meaningful_improvement_rate"] == "0.25"
    assert row["swemwbs_change_meaningful_improvement_lower"] == "-0.0"
    assert "-4.12," in text.splitlines()[1] + ","  # unquoted, a number to a spreadsheet


def test_controlled_counts_become_their_display_with_rates_beside_them() -> None:
    [row] = _read(to_csv([{"org": "trust", "screened": _count("fewer than 8", rate=None,
                                                              lower=0.1, upper=None)}]))
    assert row == {"org": "trust", "screened": "fewer than 8", "screened_rate": "",
                   "screened_lower": "0.1", "screened_upper": ""}


def test_columns_are_the_union_of_every_rows_in_first_seen_order() -> None:
    rows: list[dict[str, Any]] = [
        {"team": "a", "due": 1}, {"team": "b", "held": True, "due": 2},
        {"changed_at": "2026-11-20T09:30:00+00:00", "team": "c", "held_reason": None}]
    text = to_csv(rows)
    assert text.splitlines()[0] == "team,due,held,changed_at,held_reason"
    assert _read(text) == [
        {"team": "a", "due": "1", "held": "", "changed_at": "", "held_reason": ""},
        {"team": "b", "due": "2", "held": "True", "changed_at": "", "held_reason": ""},
        {"team": "c", "due": "", "held": "", "changed_at": "2026-11-20T09:30:00+00:00",
         "held_reason": ""}]


def test_held_and_its_reason_are_plain_columns() -> None:
    [row] = _read(to_csv([{"team": "a", "held": False, "held_reason": "-awaiting review",
                           "changed_at": "2026-11-20T09:30:00Z"}]))
    assert row == {"team": "a", "held": "False", "held_reason": "'-awaiting review",
                   "changed_at": "2026-11-20T09:30:00Z"}


def test_no_rows_is_an_empty_document() -> None:
    assert to_csv([]) == ""


def test_a_published_row_reads_back_as_published() -> None:
    row = {"team": PAYLOAD, "due": _count("fewer than 8"),
           "screened": {"value": 0, "display": "0", "suppressed": False},
           "screened_rate": {"rate": None, "lower": None, "upper": None, "withheld": True},
           "changed_at": "2026-11-20T09:30:00+00:00", "held": False, "held_reason": None}
    [read] = _read(to_csv([row]))
    assert read == {"team": "'" + PAYLOAD, "due": "fewer than 8", "screened": "0",
                    "screened_rate_rate": "", "screened_rate_lower": "",
                    "screened_rate_upper": "", "screened_rate_withheld": "True",
                    "changed_at": "2026-11-20T09:30:00+00:00", "held": "False",
                    "held_reason": ""}
