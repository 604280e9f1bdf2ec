"""Structured JSON logs that never carry personal data.

Log calls pass only identifiers that are not personal (event ids, record ids, counts); as a
second line of defence the formatter drops keys that name personal data and masks anything
shaped like an NHS number.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final

PERSONAL_KEYS: Final = frozenset({
    "nhs_number", "name", "display_name", "phone", "address", "email", "notes", "details",
    "concern_details", "reasons", "safe_contact", "subject", "subject_id", "postcode",
})
_NHS_NUMBER = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
NOISY_LOGGERS: Final = ("kafka", "aiokafka", "faust", "mode", "uvicorn.access", "httpx",
                        "alembic")
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {
    "message", "asctime", "color_message"}


def scrub(text: str) -> str:
    """Mask anything shaped like an NHS number."""
    return _NHS_NUMBER.sub("[masked]", text)


def _masked(value: Any) -> Any:
    """A log value with NHS-number-shaped text masked, before it is rendered as JSON."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, int) and not isinstance(value, bool) and _NHS_NUMBER.fullmatch(
            str(value)):
        return "[masked]"
    if isinstance(value, dict):
        return {k: "[dropped]" if k in PERSONAL_KEYS else _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and safe extra fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON, dropping personal keys."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            entry[key] = "[dropped]" if key in PERSONAL_KEYS else _masked(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=lambda v: scrub(str(v)))


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's output as JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def json_logging_config(service: str, level: str = "INFO") -> dict[str, Any]:
    """The same set-up as ``configure_logging``, as a ``logging.config`` dictionary."""
    quiet = {"level": "WARNING"} if logging.getLevelName(level) < logging.WARNING else {}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {name: quiet for name in NOISY_LOGGERS},
    }
