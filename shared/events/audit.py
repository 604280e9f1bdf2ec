"""The consent audit chain's head, published on ``audit.heads`` (version 1).

Published outside the database so that a rewrite of the audit trail, even by someone who also
holds the audit key, disagrees with a head already out of their reach. The envelope has no
``subject``: a head is about the whole trail, never about a person, and carries nothing
personal (a sequence number, a keyed hash and a time).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from shared.events.envelope import EventPayload


class AuditHeadPublished(EventPayload):
    """The newest entry of the consent audit trail when the worker last looked."""

    event_type: ClassVar[str] = "audit-head-published"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"
    about_a_person: ClassVar[bool] = False

    seq: int = Field(ge=1, description="the newest entry's sequence number")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$",
                      description="the newest entry's chain hash (HMAC-SHA256, hex)")
    at: AwareDatetime = Field(description="when the database said this was the head")
