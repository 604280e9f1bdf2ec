"""The keyed names of a person: the safeguarding pseudonym (and its key) and the
local-identifier look-up."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from services.consent.bootstrap import safeguarding_pseudonym_key
from services.consent.domain.subjects import NhsNumberLookup, SafeguardingPseudonyms
from shared.identity import InvalidNhsNumber
from shared.settings import PlatformSettings

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


@pytest.fixture
def _no_configured_pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PEERLINK_SAFEGUARDING_PSEUDONYM_KEY", "PEERLINK_SAFEGUARDING_PSEUDONYM_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("_no_configured_pseudonym_key")
def test_production_refuses_to_start_without_a_pseudonym_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"development-safeguarding-pseudonym.*production"):
        safeguarding_pseudonym_key(PlatformSettings(env="production", var_dir=tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("_no_configured_pseudonym_key")
def test_the_pseudonym_key_is_configured_or_a_development_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    development = safeguarding_pseudonym_key(PlatformSettings(var_dir=tmp_path))
    assert development == safeguarding_pseudonym_key(PlatformSettings(var_dir=tmp_path))
    assert (tmp_path / "development-safeguarding-pseudonym.key").exists()

    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(base64.b64encode(KEY).decode() + "\n")
    monkeypatch.setenv("PEERLINK_SAFEGUARDING_PSEUDONYM_KEY_FILE", str(key_file))
    production = PlatformSettings(env="production", var_dir=tmp_path)
    assert safeguarding_pseudonym_key(production) == KEY
    monkeypatch.setenv("PEERLINK_SAFEGUARDING_PSEUDONYM_KEY",
                       base64.b64encode(OTHER_KEY).decode())
    assert safeguarding_pseudonym_key(production) == OTHER_KEY
