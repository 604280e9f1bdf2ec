"""Cascade acknowledgements every service publishes on ``cascade.acks`` (version 1).

The consent service's tracker completes a withdrawal when every required service has
acknowledged it. The envelope's ``subject`` is the person the withdrawal is about.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from shared.events.envelope import EventPayload
from shared.events.vocabulary import Purposes, RecordId, ServiceName


class CascadeAcknowledgement(EventPayload):
    """What every acknowledgement carries."""

    service: ServiceName = Field(description="the acknowledging service")
    withdrawal_id: RecordId = Field(description="the withdrawal acknowledged")
    purposes: Purposes = Field(description="the withdrawal's purposes")
    applied_at: AwareDatetime = Field(description="when the service's effect was committed")


class WithdrawalApplied(CascadeAcknowledgement):
    """A service stopped the processing that relied on the withdrawn purposes."""

    event_type: ClassVar[str] = "withdrawal-applied"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "any"


class ErasureApplied(CascadeAcknowledgement):
    """A service deleted the person's personal data, except what another lawful basis keeps."""

    event_type: ClassVar[str] = "erasure-applied"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "any"

    retained_records: int = Field(
        ge=0, description="records kept under another lawful basis (MARAC referrals, "
                          "safeguarding concerns), flagged for the data protection officer")
