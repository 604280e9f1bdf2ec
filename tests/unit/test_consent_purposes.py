"""Which purposes a withdrawal covers, and which services must acknowledge it."""

from __future__ import annotations

import pytest

from services.consent.domain.purposes import (
    PurposeNotOffered,
    UnknownPurpose,
    check_offered,
    expand_purposes,
    offered_purposes,
    required_services,
)
from shared.events.vocabulary import ERASURE_ACKNOWLEDGED_BY

CATALOGUE = ("peer-mentoring", "partner-sharing", "evaluation", "research")
EVERY_SERVICE = frozenset({"consent", "screening", "mentoring", "reporting"})


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        pytest.param(["all"], CATALOGUE, id="all-in-catalogue-order"),
        pytest.param(["all", "all"], CATALOGUE, id="all-twice"),
        pytest.param(["peer-mentoring"], ("peer-mentoring",), id="one"),
        pytest.param(["evaluation", "peer-mentoring"], ("peer-mentoring", "evaluation"),
                     id="catalogue-order-not-request-order"),
        pytest.param(["evaluation", "evaluation", "partner-sharing", "evaluation"],
                     ("partner-sharing", "evaluation"), id="duplicates-once"),
        pytest.param(["research", "evaluation", "partner-sharing", "peer-mentoring"], CATALOGUE,
                     id="every-purpose-by-name"),
        pytest.param(iter(["partner-sharing"]), ("partner-sharing",), id="any-iterable"),
    ],
)
def test_expand_purposes(requested: list[str], expected: tuple[str, ...]) -> None:
    assert expand_purposes(requested) == expected


@pytest.mark.parametrize(
    ("requested", "named"),
    [
        pytest.param(["marketing"], ["'marketing'"], id="unknown"),
        pytest.param(["peer-mentoring", "marketing"], ["'marketing'"], id="unknown-among-known"),
        pytest.param(["zeta", "alpha"], ["'alpha'", "'zeta'"], id="every-unknown-named"),
        pytest.param(["Peer-Mentoring"], ["'Peer-Mentoring'"], id="case-matters"),
        pytest.param(["ALL"], ["'ALL'"], id="all-is-lower-case"),
        pytest.param(["all", "evaluation"], ['"all"'], id="all-with-another"),
        pytest.param(["all", "marketing"], ['"all"'], id="all-with-an-unknown"),
        pytest.param([], ["at least one"], id="empty"),
    ],
)
def test_expand_purposes_refuses(requested: list[str], named: list[str]) -> None:
    with pytest.raises(UnknownPurpose) as raised:
        expand_purposes(requested)
    for fragment in named:
        assert fragment in str(raised.value)


def test_unknown_purpose_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="marketing"):
        expand_purposes(["marketing"])


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        pytest.param(["peer-mentoring"], {"mentoring"}, id="peer-mentoring"),
        pytest.param(["partner-sharing"], {"screening", "mentoring"}, id="partner-sharing"),
        pytest.param(["evaluation"], {"reporting"}, id="evaluation"),
        pytest.param(["research"], {"reporting"}, id="research"),
        pytest.param(["peer-mentoring", "partner-sharing"], {"screening", "mentoring"},
                     id="union-without-repeats"),
        pytest.param(["peer-mentoring", "evaluation"], {"mentoring", "reporting"},
                     id="mentoring-and-evaluation"),
        pytest.param(["all"], {"screening", "mentoring", "reporting"},
                     id="all-is-every-service-but-consent"),
    ],
)
def test_required_services_for_a_withdrawal(requested: list[str], expected: set[str]) -> None:
    required = required_services(expand_purposes(requested))
    assert required == frozenset(expected)
    assert "consent" not in required


@pytest.mark.parametrize(
    "requested",
    [["peer-mentoring"], ["partner-sharing"], ["evaluation"], ["all"]],
    ids=lambda r: "-".join(r),
)
def test_a_withdrawal_with_erasure_asked_waits_only_for_its_purposes_services(
        requested: list[str]) -> None:
    """The erasure request filed beside it tracks every service's erasure-applied itself."""
    purposes = expand_purposes(requested)
    assert required_services(purposes) < EVERY_SERVICE
    assert ERASURE_ACKNOWLEDGED_BY == EVERY_SERVICE


@pytest.mark.parametrize(
    ("configured", "offered"),
    [
        pytest.param("peer-mentoring,partner-sharing,evaluation,research", CATALOGUE,
                     id="the-default-is-every-purpose"),
        pytest.param(" research , peer-mentoring ", ("peer-mentoring", "research"),
                     id="catalogue-order-and-spaces"),
        pytest.param("evaluation,evaluation", ("evaluation",), id="once"),
    ],
)
def test_purposes_offered_come_from_configuration(configured: str,
                                                  offered: tuple[str, ...]) -> None:
    assert offered_purposes(configured) == offered


@pytest.mark.parametrize("configured", ["", " , ", "evaluation,newsletter"])
def test_a_misconfigured_purpose_list_names_the_setting(configured: str) -> None:
    with pytest.raises(UnknownPurpose, match="PEERLINK_CONSENT_PURPOSES"):
        offered_purposes(configured)


def test_consent_is_recorded_only_to_a_purpose_offered() -> None:
    check_offered("research", CATALOGUE)  # type: ignore[arg-type]
    with pytest.raises(PurposeNotOffered, match=r"^purpose: 'research' is not offered"):
        check_offered("research", ("peer-mentoring", "evaluation"))
