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


class PurposeNotOffered(ValueError):
    """A purpose Peerlink knows that this deployment does not offer."""


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


def offered_purposes(configured: str) -> tuple[Purpose, ...]:
    """The purposes a deployment offers (``PEERLINK_CONSENT_PURPOSES``, comma-separated), in
    catalogue order; an unknown or missing one stops the service at startup."""
    wanted = {name.strip() for name in configured.split(",") if name.strip()}
    unknown = sorted(wanted - set(PURPOSES))
    if unknown or not wanted:
        raise UnknownPurpose(f"PEERLINK_CONSENT_PURPOSES: {', '.join(map(repr, unknown))} "
                             f"unknown; name one or more of {', '.join(PURPOSES)}"
                             if unknown else "PEERLINK_CONSENT_PURPOSES: name at least one "
                             f"of {', '.join(PURPOSES)}")
    return tuple(p for p in PURPOSES if p in wanted)


def check_offered(purpose: Purpose, offered: Iterable[Purpose]) -> None:
    """Consent can be recorded only to a purpose the deployment offers (withdrawal of any
    purpose stays possible: a purpose no longer offered may still have been granted)."""
    offered = tuple(offered)
    if purpose not in offered:
        raise PurposeNotOffered(f"purpose: {purpose!r} is not offered here; purposes offered "
                                f"are {', '.join(offered)}")


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
