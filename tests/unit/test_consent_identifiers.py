"""The keyed names of a person: the safeguarding pseudonym and the local-identifier look-up."""

from __future__ import annotations

import pytest

from services.consent.domain.subjects import NhsNumberLookup, SafeguardingPseudonyms
from shared.identity import InvalidNhsNumber

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_one_nhs_number_in_any_spelling_has_one_pseudonym() -> None:
    pseudonyms = SafeguardingPseudonyms(KEY)
    spellings = {pseudonyms.of_nhs_number(n)
                 for n in ("9434765919", "943 476 5919", "943-476-5919")}
    assert len(spellings) == 1
    assert len(spellings.pop()) == 64


def test_another_key_gives_another_pseudonym() -> None:
    assert (SafeguardingPseudonyms(KEY).of_nhs_number("9434765919")
            != SafeguardingPseudonyms(OTHER_KEY).of_nhs_number("9434765919"))
    assert (SafeguardingPseudonyms(KEY).of_local_id("partner-a", "CL-1")
            != SafeguardingPseudonyms(OTHER_KEY).of_local_id("partner-a", "CL-1"))


def test_local_and_nhs_pseudonyms_differ_and_local_ones_belong_to_their_organisation() -> None:
    pseudonyms = SafeguardingPseudonyms(KEY)
    assert pseudonyms.of_nhs_number("9434765919") != pseudonyms.of_local_id(
        "partner-a", "9434765919")
    assert pseudonyms.of_local_id("partner-a", "CL-1") != pseudonyms.of_local_id(
        "partner-b", "CL-1")
    assert pseudonyms.of_local_id("partner-a", "CL-1") == pseudonyms.of_local_id(
        "partner-a", "CL-1")


def test_an_invalid_nhs_number_has_no_pseudonym() -> None:
    with pytest.raises(InvalidNhsNumber):
        SafeguardingPseudonyms(KEY).of_nhs_number("9434765918")


def test_local_look_ups_are_per_organisation_and_apart_from_nhs_look_ups() -> None:
    lookup = NhsNumberLookup(KEY)
    assert lookup.local_digest("partner-a", "CL-1") != lookup.local_digest("partner-b", "CL-1")
    assert lookup.local_digest("partner-a", "CL-1") == lookup.local_digest("partner-a", "CL-1")
    assert lookup.local_digest("partner-a", "9434765919") != lookup.digest("9434765919")


def test_the_keys_are_never_printed() -> None:
    assert repr(KEY) not in repr(SafeguardingPseudonyms(KEY))
    assert repr(KEY) not in repr(NhsNumberLookup(KEY))
