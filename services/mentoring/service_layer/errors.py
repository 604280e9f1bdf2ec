"""What mentoring's use cases answer when a record is missing or past changing (both the
mentoring and the safeguarding use cases raise them)."""


class NotFound(LookupError):
    """No such record in the caller's organisation (the message names the kind of record)."""


class NotActive(ValueError):
    """The match has ended (or the referral is no longer open)."""
