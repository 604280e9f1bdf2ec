"""Subjects: a random reference per person, their NHS-number mapping and their data key."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class NhsNumberLookup:
    """Keyed hash of an NHS number, so the mapping can be searched without storing it in clear."""

    key: bytes

    def digest(self, nhs_number: str) -> str:
        """The lookup value for a normalised NHS number."""
        return hmac.new(self.key, nhs_number.encode(), hashlib.sha256).hexdigest()
