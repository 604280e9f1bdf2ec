"""Identity primitives: NHS number validation, random subject references, and the
"NHS number or subject reference" every record about a person starts from."""

from __future__ import annotations

import secrets
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SUBJECT_PREFIX = "sub_"
_NHS_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


class InvalidNhsNumber(ValueError):
    """An NHS number that is not 10 digits with a valid Modulus 11 check digit.

    The message never repeats the number itself.
    """


def normalise_nhs_number(value: str) -> str:
    """Return the 10-digit NHS number, accepting spaces or hyphens as separators.

    Raises ``InvalidNhsNumber`` when the format or the Modulus 11 check digit is wrong.
    """
    digits = value.replace(" ", "").replace("-", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        raise InvalidNhsNumber("an NHS number has exactly 10 digits")
    total = sum(int(d) * w for d, w in zip(digits[:9], _NHS_WEIGHTS, strict=True))
    check = 11 - (total % 11)
    if check == 11:
        check = 0
    if check == 10 or check != int(digits[9]):
        raise InvalidNhsNumber("the NHS number's check digit is wrong (Modulus 11)")
    return digits


def new_subject_reference() -> str:
    """A random, meaningless reference for a person (128 bits)."""
    return SUBJECT_PREFIX + secrets.token_hex(16)


def is_subject_reference(value: str) -> bool:
    """Whether a string has the shape of a subject reference."""
    body = value.removeprefix(SUBJECT_PREFIX)
    return value.startswith(SUBJECT_PREFIX) and len(body) == 32 and all(
        c in "0123456789abcdef" for c in body
    )


SUBJECT_PATTERN: Final = r"^sub_[0-9a-f]{32}$"


class PersonRef(BaseModel):
    """Who a record is about: an NHS number or a subject reference, exactly one."""

    model_config = ConfigDict(extra="forbid")

    nhs_number: str | None = Field(default=None, description="10-digit NHS number (Modulus 11)")
    subject_id: str | None = Field(default=None, pattern=SUBJECT_PATTERN,
                                   description="the person's subject reference")

    @field_validator("nhs_number")
    @classmethod
    def _valid_nhs_number(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalise_nhs_number(value)
        except InvalidNhsNumber as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _exactly_one(self) -> PersonRef:
        if (self.nhs_number is None) == (self.subject_id is None):
            raise ValueError("give exactly one of nhs_number or subject_id")
        return self
