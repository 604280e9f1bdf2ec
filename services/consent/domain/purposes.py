"""Consent purposes and which services must acknowledge their withdrawal.

| purpose          | meaning                                                | must acknowledge     |
| peer-mentoring   | referral to, matching with, contact by a peer mentor   | mentoring            |
| partner-sharing  | sharing screening and risk information with partners   | screening, mentoring |
| evaluation       | inclusion in the programme's evaluation and dashboards | reporting            |

An approved erasure request must be acknowledged (erasure-applied) by all four services; the
withdrawal filed with it completes on the withdrawal-applied of its purposes' services.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from shared.events.vocabulary import PURPOSES, Purpose, ServiceName

ALL: Final = "all"
ACKNOWLEDGED_BY: Final[dict[Purpose, frozenset[ServiceName]]] = {
    "peer-mentoring": frozenset({"mentoring"}),
    "partner-sharing": frozenset({"screening", "mentoring"}),
    "evaluation": frozenset({"reporting"}),
}
ERASURE_ACKNOWLEDGED_BY: Final[frozenset[ServiceName]] = frozenset(
    {"consent", "screening", "mentoring", "reporting"})


class UnknownPurpose(ValueError):
    """A purpose that is not one of Peerlink's."""


def expand_purposes(requested: Iterable[str]) -> tuple[Purpose, ...]:
    """The purposes a withdrawal covers, in catalogue order; ``["all"]`` means every purpose."""
    wanted = set(requested)
    if not wanted:
        raise UnknownPurpose("name at least one purpose, or all")
    if ALL in wanted:
        if wanted != {ALL}:
            raise UnknownPurpose('"all" cannot be combined with other purposes')
        return PURPOSES
    unknown = sorted(wanted - set(PURPOSES))
    if unknown:
        raise UnknownPurpose(f"unknown purpose {', '.join(map(repr, unknown))}; purposes are "
                             f"{', '.join(PURPOSES)} or all")
    return tuple(p for p in PURPOSES if p in wanted)


def required_services(purposes: Iterable[Purpose]) -> frozenset[ServiceName]:
    """The services whose withdrawal-applied completes a withdrawal (with or without an
    erasure request filed beside it)."""
    required: frozenset[ServiceName] = frozenset()
    for purpose in purposes:
        required |= ACKNOWLEDGED_BY[purpose]
    return required
