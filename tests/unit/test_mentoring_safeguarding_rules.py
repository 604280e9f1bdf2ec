"""The safeguarding pseudonym through mentoring's port to consent: an erased or unknown person
has none (their concerns link by subject reference only); consent being down is not hidden."""

from __future__ import annotations

import pytest

from services.mentoring.service_layer.safeguarding import pseudonym_of
from shared.auth import Principal
from shared.crypto import KeyShredded, KeyStoreUnavailable, UnknownSubject
from shared.events.consent import SafeContact


class FakeRegistry:
    """Answers the pseudonym, or raises what consent's client would."""

    def __init__(self, answer: str | None = None, error: Exception | None = None) -> None:
        self.answer = answer
        self.error = error
        self.asked: list[str] = []

    def safeguarding_pseudonym(self, subject_id: str) -> str | None:
        self.asked.append(subject_id)
        if self.error is not None:
            raise self.error
        return self.answer

    def update_safe_contact(self, subject_id: str, contact: SafeContact,
                            caller: Principal) -> None:
        raise AssertionError("not asked here")


def test_the_pseudonym_is_consents() -> None:
    registry = FakeRegistry("psn_" + "b" * 40)
    assert pseudonym_of(registry, "sub_1") == "psn_" + "b" * 40
    assert registry.asked == ["sub_1"]


@pytest.mark.parametrize("error", [KeyShredded(), UnknownSubject()])
def test_an_erased_or_unknown_person_has_none(error: Exception) -> None:
    assert pseudonym_of(FakeRegistry(error=error), "sub_1") is None


def test_consent_being_down_is_not_taken_for_no_pseudonym() -> None:
    with pytest.raises(KeyStoreUnavailable):
        pseudonym_of(FakeRegistry(error=KeyStoreUnavailable("down")), "sub_1")
