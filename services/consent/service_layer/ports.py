"""The ports consent's use cases take that its adapters implement (besides the unit of work)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from shared.crypto import DataKey


class HeadsUnavailable(Exception):
    """The published audit heads could not be read (the reason is safe to show: no personal
    data); raised by the head log adapter (``adapters.heads.KafkaHeadLog``)."""


class SubjectKeys(Protocol):
    """People's data keys: made at registration, served, and shredded by erasure
    (``adapters.key_store.SqlDataKeyStore``)."""

    def create(self, session: Session, subject_id: str) -> DataKey:
        """A new data key for a new subject, inside the caller's transaction."""
        ...

    def data_key(self, subject_id: str) -> DataKey:
        """The subject's key; raises KeyShredded, UnknownSubject or KeyStoreUnavailable."""
        ...

    def data_key_in(self, session: Session, subject_id: str) -> DataKey:
        """The subject's key, read in the caller's session."""
        ...

    def shred(self, session: Session, subject_id: str) -> str | None:
        """Destroy the subject's key; returns its id, or None if it was already gone."""
        ...
