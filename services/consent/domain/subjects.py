"""Subjects: a random reference per person, how organisations name them (an NHS number, or a
DVA partner's own client identifier), their data key and their safeguarding pseudonym."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Final

from shared.identity import normalise_nhs_number

LOCAL_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
"""A registering organisation's own client identifier: 1 to 64 letters, digits, ``.``, ``_``,
``/`` or ``-``, starting with a letter or digit (case is kept: it is that system's id)."""


def _hmac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class NhsNumberLookup:
    """Keyed hash of how a person is named (an NHS number, or an organisation's own client
    identifier), so the mapping can be searched without storing either in clear."""

    key: bytes = field(repr=False)

    def digest(self, nhs_number: str) -> str:
        """The lookup value for a normalised NHS number."""
        return _hmac(self.key, nhs_number)

    def local_digest(self, org: str, local_id: str) -> str:
        """The lookup value for ``org``'s own client identifier: the same identifier at
        another organisation is another person (organisation identifiers hold no ``:``)."""
        return _hmac(self.key, f"local:{org}:{local_id}")


@dataclass(frozen=True)
class SafeguardingPseudonyms:
    """The keyed pseudonym that links a person's safeguarding records (MARAC referrals,
    concerns) across erasure and re-registration, so a repeat referral is still recognised.

    HMAC-SHA256 under the safeguarding pseudonym key, which no database holds: of the NHS
    number when there is one, else of the registering organisation's client identifier.
    """

    key: bytes = field(repr=False)

    def of_nhs_number(self, nhs_number: str) -> str:
        """The pseudonym of an NHS number, in any accepted spelling (spaces, hyphens)."""
        return _hmac(self.key, f"nhs:{normalise_nhs_number(nhs_number)}")

    def of_local_id(self, org: str, local_id: str) -> str:
        """The pseudonym of a person known only by ``org``'s own client identifier."""
        return _hmac(self.key, f"local:{org}:{local_id}")
