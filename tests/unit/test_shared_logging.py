"""Structured JSON logs: personal keys dropped, NHS numbers masked, exceptions by type only."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from shared.logging import PERSONAL_KEYS, JsonFormatter, scrub


def record(msg: str = "event applied", args: tuple[Any, ...] = (), *,
           exc: BaseException | None = None, **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("peerlink.test", logging.INFO, __file__, 10, msg, args, exc_info)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def render(rec: logging.LogRecord) -> tuple[str, dict[str, Any]]:
    line = JsonFormatter("screening").format(rec)
    return line, json.loads(line)


def test_output_is_one_json_object_with_the_standard_fields() -> None:
    line, entry = render(record("applied %d events", (3,)))
    assert "\n" not in line
    assert entry["message"] == "applied 3 events"
    assert entry["level"] == "info"
    assert entry["service"] == "screening"
    assert entry["logger"] == "peerlink.test"
    assert entry["time"].endswith("+00:00")


@pytest.mark.parametrize(
    ("given_extra", "expected"),
    [
        pytest.param({"nhs_number": "9434765919"}, {"nhs_number": "[dropped]"}, id="nhs_number"),
        pytest.param({"notes": "told me about Tuesday"}, {"notes": "[dropped]"}, id="notes"),
        pytest.param({"subject_id": "sub_" + "a" * 32}, {"subject_id": "[dropped]"},
                     id="subject_id"),
        pytest.param({"display_name": "Jane Example", "event_id": "e-1"},
                     {"display_name": "[dropped]", "event_id": "e-1"}, id="mixed"),
        pytest.param({"reasons": "previous threats", "count": 4},
                     {"reasons": "[dropped]", "count": 4}, id="reasons-and-count"),
        pytest.param({"topic": "screening.events"}, {"topic": "screening.events"},
                     id="safe-key-kept"),
    ],
)
def test_personal_extra_keys_are_dropped(given_extra: dict[str, Any],
                                         expected: dict[str, Any]) -> None:
    line, entry = render(record(**given_extra))
    for key, value in expected.items():
        assert entry[key] == value
    for key, value in given_extra.items():
        if key in PERSONAL_KEYS:
            assert str(value) not in line


@pytest.mark.parametrize(
    ("given_msg", "given_args", "expected_message"),
    [
        pytest.param("patient 943 476 5919 seen", (), "patient [masked] seen", id="spaced"),
        pytest.param("patient 9434765919 seen", (), "patient [masked] seen", id="unspaced"),
        pytest.param("patient 943-476-5919 seen", (), "patient [masked] seen", id="hyphens"),
        pytest.param("patient %s seen", ("943 476 5919",), "patient [masked] seen",
                     id="via-args"),
        pytest.param("patient %d seen", (9434765919,), "patient [masked] seen",
                     id="integer-arg"),
        pytest.param("9434765919", (), "[masked]", id="whole-message"),
        pytest.param("applied 12345 events", (), "applied 12345 events", id="short-number-kept"),
        pytest.param("id 123456789012", (), "id 123456789012", id="longer-number-kept"),
    ],
)
def test_nhs_numbers_in_messages_are_masked(given_msg: str, given_args: tuple[Any, ...],
                                            expected_message: str) -> None:
    line, entry = render(record(given_msg, given_args))
    assert entry["message"] == expected_message
    assert "9434765919" not in line
    assert "943 476 5919" not in line


@pytest.mark.parametrize(
    "given_value",
    [
        pytest.param("943 476 5919", id="spaced-string"),
        pytest.param("9434765919", id="string"),
        pytest.param(["a", "9434765919"], id="inside-a-list"),
    ],
)
def test_nhs_number_in_a_string_under_a_safe_key_is_masked(given_value: Any) -> None:
    line, entry = render(record(reference=given_value))
    assert "[masked]" in json.dumps(entry["reference"])
    assert "9434765919" not in line
    assert "943 476 5919" not in line


def test_an_integer_shaped_like_an_nhs_number_is_masked_and_the_line_stays_json() -> None:
    line = JsonFormatter("screening").format(record(value=9434765919))
    entry = json.loads(line)
    assert "9434765919" not in line
    assert entry["value"] == "[masked]"


def test_a_float_timestamp_is_kept_and_the_line_stays_json() -> None:
    line = JsonFormatter("screening").format(record(value=1767225600.25))
    assert json.loads(line)["value"] == 1767225600.25


@pytest.mark.parametrize(
    ("given_exception", "expected_error"),
    [
        pytest.param(ValueError("nhs 9434765919 belongs to Jane Example"), "ValueError",
                     id="value-error"),
        pytest.param(KeyError("Jane Example"), "KeyError", id="key-error"),
        pytest.param(RuntimeError("notes: told me about Tuesday"), "RuntimeError",
                     id="runtime-error"),
    ],
)
def test_exceptions_yield_only_their_type_name(given_exception: BaseException,
                                               expected_error: str) -> None:
    rec = record("handler failed", exc=given_exception)
    # given another handler already formatted the traceback onto the record
    logging.Formatter().format(rec)
    assert rec.exc_text
    line, entry = render(rec)
    assert entry["error"] == expected_error
    assert "Jane Example" not in line
    assert "Tuesday" not in line
    assert "Traceback" not in line


def test_no_error_key_without_exception() -> None:
    _, entry = render(record())
    assert "error" not in entry


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("943 476 5919", "[masked]", id="spaced"),
        pytest.param("a9434765919b", "a[masked]b", id="letters-around"),
        pytest.param("94347659190", "94347659190", id="eleven-digits"),
        pytest.param("", "", id="empty"),
    ],
)
def test_scrub(given: str, expected: str) -> None:
    assert scrub(given) == expected
