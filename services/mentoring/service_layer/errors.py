"""What mentoring's use cases answer when a record is missing or past changing (both the
mentoring and the safeguarding use cases raise them)."""


class NotFound(LookupError):
    """No such record in the caller's organisation (the message names the kind of record)."""


class NotActive(ValueError):
    """The match has ended (or the referral is no longer open)."""


class UnknownCodes(ValueError):
    """Codes that are not in the configured list; the message names the field first
    (``field: ...``)."""

    def __init__(self, field: str, unknown: list[str], allowed: tuple[str, ...]) -> None:
        super().__init__(f"{field}: not configured: {', '.join(unknown)} (configured: "
                         f"{', '.join(allowed)})")
        self.field = field
