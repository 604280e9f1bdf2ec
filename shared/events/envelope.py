"""The CloudEvents 1.0 envelope (JSON structured mode) and the base of every event payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

SPEC_VERSION: Final = "1.0"
SCHEMA_URN_PREFIX = "urn:peerlink:schema"


def schema_urn(event_type: str, version: int) -> str:
    """The ``dataschema`` URI that names one event type and version."""
    return f"{SCHEMA_URN_PREFIX}:{event_type}:{version}"


class EncryptedBlock(BaseModel):
    """Personal data sealed with AES-256-GCM under the subject's data key.

    The plaintext is a JSON object of personal fields; the subject reference and the event
    type are bound as associated data, so a block cannot be moved to another person or event.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["A256GCM"] = "A256GCM"
    key_id: str = Field(description="identifier of the subject's data key")
    nonce: str = Field(description="96-bit nonce, base64url")
    ciphertext: str = Field(description="ciphertext and tag, base64url")


class EventPayload(BaseModel):
    """Base of every event's ``data``: one subclass per event type and version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    publisher: ClassVar[str]

    @classmethod
    def dataschema(cls) -> str:
        """The schema URN of this event type and version."""
        return schema_urn(cls.event_type, cls.version)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope. ``source`` + ``id`` is the de-duplication key."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100)
    subject: str | None = Field(default=None, max_length=100,
                                description="the person's random reference, never an NHS number")
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a timezone (RFC 3339)")
        return value

    @classmethod
    def wrap(cls, payload: EventPayload, *, source: str, subject: str | None,
             time: datetime | None = None, event_id: str | None = None) -> Self:
        """Put a payload in a new envelope."""
        return cls(
            id=event_id or str(uuid.uuid4()),
            source=source,
            type=payload.event_type,
            subject=subject,
            time=time or datetime.now(UTC),
            dataschema=payload.dataschema(),
            data=payload.model_dump(mode="json"),
        )

    @property
    def dedup_key(self) -> str:
        """The key under which a consumer records that it applied this event."""
        return f"{self.source}#{self.id}"

    def to_bytes(self) -> bytes:
        """The structured-mode JSON encoding."""
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Self:
        """Parse a structured-mode JSON record; raises ``pydantic.ValidationError``."""
        return cls.model_validate_json(raw or b"")
