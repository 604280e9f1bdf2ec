"""Events the consent service publishes on ``consent.events`` (version 1).

The envelope's ``subject`` is the person's random reference; personal data travels only in
``personal`` blocks sealed under that person's data key.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events.envelope import EncryptedBlock, EventPayload
from shared.events.vocabulary import (
    ConsentMethod,
    ErasureScope,
    OrgId,
    OrgIds,
    Purpose,
    Purposes,
    RecordId,
    RelationshipBasis,
    RetainedKinds,
    ServiceNames,
)


class SafeContact(BaseModel):
    """How the person may be contacted safely: personal data, always sealed.

    It goes with every MARAC, IDVA and mentoring referral and every safeguarding concern; the
    consent service holds the current instructions and publishes each update to every holder.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    phone: str = Field(min_length=6, max_length=25, pattern=r"^\+?[0-9][0-9 ()-]*[0-9]$",
                       description="a safe number: digits, spaces, brackets and dashes, an "
                                   "optional leading +")
    times: str = Field(min_length=1, max_length=200, pattern=r"\S",
                       description="safe times to call (not blank)")
    may_leave_message: bool = Field(description="whether a message may be left")
    safe_to_call: bool | None = Field(
        default=None, description="whether the number is safe to call (the referral form asks); "
                                  "null when it was not asked")
    instructions: str | None = Field(default=None, max_length=500, pattern=r"\S",
                                     description="anything else the caller must know (not "
                                                 "blank when given)")


class SubjectRegistered(EventPayload):
    """A person was given a random subject reference."""

    event_type: ClassVar[str] = "subject-registered"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"

    org: OrgId = Field(description="organisation that registered the person")
    personal: EncryptedBlock | None = Field(
        default=None, description='sealed plaintext keys: "nhs_number"')


class RelationshipEstablished(EventPayload):
    """An organisation gained a relationship with a person: it registered them as its own, or
    received a referral for them. Reading another organisation's records needs this and
    partner-sharing naming the reader."""

    event_type: ClassVar[str] = "relationship-established"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"

    org: OrgId = Field(description="organisation that now has a relationship with the person")
    basis: RelationshipBasis = Field(description="registered (own patient or client) or "
                                                 "referral (received one for the person)")


class ConsentGranted(EventPayload):
    """A person consented to one purpose."""

    event_type: ClassVar[str] = "consent-granted"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"

    consent_id: RecordId = Field(description="the consent record")
    purpose: Purpose = Field(description="the purpose consented to")
    method: ConsentMethod = Field(description="how consent was given")
    org: OrgId = Field(description="organisation that recorded the consent and holds the "
                                   "records it covers")
    recipients: OrgIds = Field(
        default=(), description="partner-sharing only: the organisations the holder's records "
                                "may be shared with (empty for other purposes)")
    personal: EncryptedBlock | None = Field(
        default=None, description='sealed plaintext keys: "recorded_by" (who recorded it)')


class ConsentWithdrawn(EventPayload):
    """A person withdrew consent to some purposes; services acknowledge with withdrawal-applied."""

    event_type: ClassVar[str] = "consent-withdrawn"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"

    withdrawal_id: RecordId = Field(description="the withdrawal the cascade is tracked under")
    purposes: Purposes = Field(description='purposes withdrawn ("all" already expanded)')
    erasure: bool = Field(description="whether erasure was asked for as well")
    method: ConsentMethod = Field(description="how the withdrawal was made")
    org: OrgId = Field(description="organisation that recorded the withdrawal and holds the "
                                   "records it covers")
    recipients: OrgIds = Field(
        default=(), description="when partner-sharing is withdrawn: the recipient "
                                "organisations that lost access to the holder's records")


class ErasureRequested(EventPayload):
    """The holding organisation's DPO approved a person's erasure request: every service erases
    and acknowledges with erasure-applied. (Published only on a decision to erase; a request
    awaiting the DPO, or refused, changes nothing anywhere.)

    Safeguarding records are always kept (another lawful basis); ``retained`` names the further
    record kinds the DPO kept. ``scope`` ``organisation`` erases only ``org``'s records (another
    organisation holds the person independently, so their key stays); ``subject`` erases the
    person everywhere and is followed by subject-key-shredded.
    """

    event_type: ClassVar[str] = "erasure-requested"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"

    withdrawal_id: RecordId = Field(description="the withdrawal that asked for erasure")
    purposes: Purposes = Field(description="purposes withdrawn with it")
    method: ConsentMethod = Field(description="how the request was made")
    org: OrgId = Field(description="organisation whose DPO decided (the holder)")
    erasure_request_id: RecordId | None = Field(
        default=None, description="the erasure request decided (absent before DPO decisions)")
    scope: ErasureScope = Field(default="subject", description="subject or organisation")
    retained: RetainedKinds = Field(
        default=(), description="record kinds kept under another lawful basis, beyond the "
                                "safeguarding records that are always kept")


class SafeContactUpdated(EventPayload):
    """An organisation changed its copy of the person's safe-contact instructions: each
    service replaces it on the records that organisation is party to (MARAC and IDVA referrals
    it raised, mentoring referrals it made or received, concerns it raised), open or kept, and
    never on another organisation's (an abuser's organisation must not be able to redirect the
    calls another one makes)."""

    event_type: ClassVar[str] = "safe-contact-updated"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"

    org: OrgId = Field(description="organisation whose copy changed")
    personal: EncryptedBlock | None = Field(
        default=None, description='sealed plaintext keys: "safe_contact" (SafeContact)')


class WithdrawalCompleted(EventPayload):
    """Every required service acknowledged a withdrawal."""

    event_type: ClassVar[str] = "withdrawal-completed"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"

    withdrawal_id: RecordId = Field(description="the completed withdrawal")
    purposes: Purposes = Field(description="purposes withdrawn")
    erasure: bool = Field(description="whether erasure was part of it")
    services: ServiceNames = Field(description="services that acknowledged")
    requested_at: AwareDatetime = Field(description="when the withdrawal was recorded")
    completed_at: AwareDatetime = Field(description="when the last acknowledgement arrived")


class WithdrawalOverdue(EventPayload):
    """A required service did not acknowledge a withdrawal within the deadline."""

    event_type: ClassVar[str] = "withdrawal-overdue"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"

    withdrawal_id: RecordId = Field(description="the overdue withdrawal")
    purposes: Purposes = Field(description="purposes withdrawn")
    erasure: bool = Field(description="whether erasure was part of it")
    pending_services: ServiceNames = Field(description="services that have not acknowledged")
    requested_at: AwareDatetime = Field(description="when the withdrawal was recorded")
    deadline_at: AwareDatetime = Field(description="when acknowledgements were due")


class SubjectKeyShredded(EventPayload):
    """The subject's data key and NHS number mapping were destroyed: evict cached keys."""

    event_type: ClassVar[str] = "subject-key-shredded"
    version: ClassVar[int] = 1
    publisher: ClassVar[str] = "consent"

    key_id: str = Field(min_length=1, max_length=200, description="the destroyed data key")
    withdrawal_id: RecordId = Field(description="the withdrawal that asked for erasure")
