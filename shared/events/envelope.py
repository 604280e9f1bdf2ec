"""The CloudEvents 1.0 envelope and the base of every event payload.

Our own producers write the JSON structured mode (``to_bytes``), keyed by the subject
reference so that one person's events stay in order on one partition; partners may also send
the Kafka binding's binary mode (``shared.kafka.binding`` turns either into this envelope).

``time`` is optional, as in CloudEvents 1.0: our own events always carry it (``wrap`` sets it),
a partner's may not. Every domain date travels in the payload (``asked_on``, ``held_on``,
``recorded_on``...), and when a payload leaves a date out the handler decides (today, as the
API does), never the time a record was consumed. The one reader of ``time`` is reporting, for
``consent-granted`` (which only the consent service writes, at the moment consent is recorded,
and whose v1 payload has no date).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

SPEC_VERSION: Final = "1.0"
SCHEMA_URN_PREFIX = "urn:peerlink:schema"
JSON_CONTENT_TYPE: Final = "application/json"
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
                     flags=re.ASCII)
"""An RFC 3339 timestamp (``date-time``), with its offset."""
JSON_MEDIA_TYPE = re.compile(r"application/([a-z0-9!#$&^_.+-]+\+)?json\s*(;.*)?",
                             flags=re.ASCII | re.IGNORECASE | re.DOTALL)
"""``application/json`` or a ``+json`` type, with optional parameters."""
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Characters a CloudEvents String may not hold."""


def is_json_media_type(content_type: str) -> bool:
    """Whether a ``datacontenttype`` says the data is JSON."""
    return JSON_MEDIA_TYPE.fullmatch(content_type.strip()) is not None


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
    about_a_person: ClassVar[bool] = True
    """Whether the event's ``subject`` is the person it is about (keyed by it on Kafka)."""

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
    time: datetime | None = Field(default=None, description="when it happened (RFC 3339); "
                                  "informational: domain dates are in data")
    datacontenttype: str = Field(default=JSON_CONTENT_TYPE, max_length=100,
                                 description="application/json or a +json type")
    dataschema: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", "source", "type", "subject", "dataschema")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and CONTROL_CHARACTERS.search(value):
            raise ValueError("must not hold control characters")
        return value

    @field_validator("time", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        if value is None or isinstance(value, datetime) or (
                isinstance(value, str) and RFC3339.fullmatch(value) is not None):
            return value
        raise ValueError("time must be an RFC 3339 timestamp with its offset")

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("time must carry a timezone (RFC 3339)")
        return value

    @field_validator("datacontenttype")
    @classmethod
    def _json(cls, value: str) -> str:
        if not is_json_media_type(value):
            raise ValueError("only JSON data is accepted: application/json or a +json type")
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
