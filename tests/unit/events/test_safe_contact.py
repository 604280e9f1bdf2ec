"""Safe-contact instructions are checked before they reach any holder: a number that is a
number, times and instructions that say something."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.events.consent import SafeContact

GOOD: dict[str, Any] = {"phone": "07700 900123", "times": "weekdays 10-12",
                        "may_leave_message": False}


@pytest.mark.parametrize("phone", ["07700 900123", "+44 (0)7700-900123", "020 7946 0018"])
def test_a_phone_number_as_people_write_them_is_accepted(phone: str) -> None:
    assert SafeContact.model_validate({**GOOD, "phone": phone}).phone == phone


@pytest.mark.parametrize("field, value", [
    ("phone", "abc"), ("phone", "call me"), ("phone", "12345"), ("phone", "07700 900123 x"),
    ("phone", "+"), ("times", " "), ("times", ""), ("instructions", "   "),
])
def test_a_contact_that_says_nothing_usable_is_refused_naming_the_field(
        field: str, value: str) -> None:
    with pytest.raises(ValidationError) as raised:
        SafeContact.model_validate({**GOOD, field: value})
    assert [error["loc"] for error in raised.value.errors()] == [(field,)]
