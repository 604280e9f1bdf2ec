"""Consent purposes and which services must acknowledge their withdrawal.

Which services acknowledge each purpose is the event vocabulary's ``ACKNOWLEDGED_BY``, the one
home of that rule, which the workers read too. An approved erasure request must be
acknowledged (erasure-applied) by all four services; the withdrawal filed with it completes on
the withdrawal-applied of its purposes' services.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from shared.events.vocabulary import ACKNOWLEDGED_BY, PURPOSES, Purpose, ServiceName

ALL: Final = "all"


class UnknownPurpose(ValueError):
    """A purpose that is not one of Peerlink's."""


class InvalidRecipients(ValueError):
    """Recipients named where they may not be, missing, or not other DVA partners."""


def check_recipients(purpose: Purpose, recipients: Iterable[str], holder: str,
                     partners: frozenset[str]) -> None:
    """Partner-sharing, and only it, names recipients: each another of the configured DVA
    ``partners`` than the ``holder`` organisation granting it."""
    named = tuple(recipients)
    if purpose != "partner-sharing":
        if named:
            raise InvalidRecipients("recipients: only partner-sharing names recipients")
        return
    if not named:
        raise InvalidRecipients("recipients: partner-sharing must name the organisations "
                                "your records may be shared with")
    if any(org not in partners or org == holder for org in named):
        raise InvalidRecipients("recipients: each must be another configured DVA partner "
                                "organisation")


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
