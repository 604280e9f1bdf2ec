"""The CloudEvents Kafka protocol binding 1.0: a consumed record as a ``CloudEvent``, in either
content mode.

- Structured mode: the ``content-type`` header starts with ``application/cloudevents``. Only
  the JSON event format (``application/cloudevents+json``) is accepted; batches
  (``application/cloudevents-batch+json``) are not.
- Binary mode: a ``ce_specversion`` header. Each attribute is a ``ce_<name>`` header (UTF-8
  text; ``ce_time`` RFC 3339), ``datacontenttype`` is the ``content-type`` header, and the
  record value is the data, accepted only as JSON (``application/json``, a ``+json`` type, or
  no content type).
- Otherwise: structured JSON, as our own producers write it (the outbox adds a lone
  ``ce_type`` header, which is not binary mode) and as older partners send it.

The record key is no attribute: by our convention it is the subject reference, but a partner's
key may be anything (even an NHS number), so it is never read as the subject nor as the
``partitionkey`` extension. Errors name the attribute (``id``, ``time``, ``datacontenttype``,
in both modes alike) and the problem, never a value nor an extension name a sender invented.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from pydantic_core import from_json

from shared.events.envelope import CloudEvent, is_json_media_type

CE_PREFIX: Final = "ce_"
CONTENT_TYPE: Final = "content-type"
STRUCTURED_PREFIX: Final = "application/cloudevents"
STRUCTURED_JSON: Final = "application/cloudevents+json"
BATCH_JSON: Final = "application/cloudevents-batch+json"
ATTRIBUTES: Final = frozenset({"specversion", "id", "source", "type", "subject", "time",
                               "dataschema"})
"""The attributes of CloudEvents 1.0 a ``ce_`` header may carry (``datacontenttype`` is the
``content-type`` header, and ``data`` the value)."""
EXTENSION_NAME = re.compile(r"[a-z0-9]{1,50}", flags=re.ASCII)
"""An extension attribute's name: lower-case ASCII letters and digits (at most 50 here)."""
EXTENSION = "an extension attribute"
"""How errors name an extension attribute: its name was the sender's invention."""

Headers = Iterable[tuple[str, bytes | None]]


class InvalidRecord(ValueError):
    """A record that is not a CloudEvent under the binding; the message names the attribute
    and the problem, never a value."""


class UnsupportedRecord(ValueError):
    """A CloudEvent in a content mode, event format or data content type not accepted."""


def decode_record(value: bytes | None, headers: Headers = ()) -> CloudEvent:
    """The CloudEvent a record carries, in structured or binary mode.

    Raises ``InvalidRecord``, ``UnsupportedRecord`` or ``pydantic.ValidationError``.
    """
    named = _by_name(headers)
    if f"{CE_PREFIX}specversion" in named:
        return _binary(value, named)
    content_type = _text(named, CONTENT_TYPE, CONTENT_TYPE)
    if content_type is not None and content_type.lower().startswith(STRUCTURED_PREFIX):
        return _structured(value, content_type)
    if any(name.startswith(CE_PREFIX) and name != f"{CE_PREFIX}type" for name in named):
        raise InvalidRecord("specversion: Field required (binary mode: the ce_specversion "
                            "header)")
    return _structured(value, STRUCTURED_JSON)


def _by_name(headers: Headers) -> dict[str, list[bytes]]:
    """Headers by lower-case name, each with every value it was given."""
    named: dict[str, list[bytes]] = {}
    for name, raw in headers:
        named.setdefault(name.lower(), []).append(raw or b"")
    return named


def _label(attribute: str) -> str:
    """How an error names an attribute: by name when CloudEvents defines it."""
    return attribute if attribute in ATTRIBUTES or attribute == "datacontenttype" else EXTENSION


def _text(named: dict[str, list[bytes]], header: str, label: str) -> str | None:
    """A header's one value as UTF-8 text, or None when it is absent."""
    values = named.get(header)
    if values is None:
        return None
    if len(values) > 1:
        raise InvalidRecord(f"{label}: given more than once")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRecord(f"{label}: not valid UTF-8") from None


def _structured(value: bytes | None, content_type: str) -> CloudEvent:
    event_format = content_type.split(";", 1)[0].strip().lower()
    if event_format == BATCH_JSON:
        raise UnsupportedRecord("content-type: batch mode is not accepted; send one CloudEvent "
                                "per record")
    if event_format != STRUCTURED_JSON:
        raise UnsupportedRecord("content-type: only the JSON event format "
                                "(application/cloudevents+json) is accepted")
    event = CloudEvent.from_bytes(value)
    if "data_base64" in (event.model_extra or {}):
        raise UnsupportedRecord("data_base64: only JSON data is accepted (data, with "
                                "datacontenttype application/json or a +json type)")
    return event


def _binary(value: bytes | None, named: dict[str, list[bytes]]) -> CloudEvent:
    attributes: dict[str, Any] = {}
    for header in named:
        if not header.startswith(CE_PREFIX):
            continue
        attribute = header.removeprefix(CE_PREFIX)
        if attribute == "data":
            raise InvalidRecord("data: travels in the record value, not in a ce_data header")
        if attribute == "datacontenttype":
            raise InvalidRecord("datacontenttype: travels in the content-type header in "
                                "binary mode")
        if attribute not in ATTRIBUTES and EXTENSION_NAME.fullmatch(attribute) is None:
            raise InvalidRecord(f"{EXTENSION}: its name is not valid (a to z and 0 to 9, at "
                                "most 50)")
        attributes[attribute] = _text(named, header, _label(attribute))
    content_type = _text(named, CONTENT_TYPE, "datacontenttype")
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    if value:
        if content_type is not None and not is_json_media_type(content_type):
            raise UnsupportedRecord("datacontenttype: only JSON data is accepted: "
                                    "application/json or a +json type")
        try:
            attributes["data"] = from_json(value, allow_inf_nan=False)
        except ValueError:
            raise InvalidRecord("data: not valid JSON") from None
    return CloudEvent.model_validate(attributes)
