"""The authoritative data-key store: keys wrapped under the master key in the consent database."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from services.consent.adapters.tables import data_keys
from shared.crypto import (
    DataKey,
    KeyShredded,
    KeyStoreUnavailable,
    KeyWrapper,
    UnknownSubject,
    new_key_material,
)
from shared.db import Database, utcnow


class SqlDataKeyStore:
    """Creates, serves and shreds subjects' data keys."""

    def __init__(self, database: Database, wrapper: KeyWrapper) -> None:
        self._db = database
        self._wrapper = wrapper

    def create(self, session: Session, subject_id: str) -> DataKey:
        """A new data key for a new subject, inside the caller's transaction."""
        material = new_key_material()
        key = DataKey(key_id=f"dk_{uuid.uuid4().hex}", material=material)
        session.execute(data_keys.insert().values(
            subject_id=subject_id, key_id=key.key_id,
            wrapped_key=self._wrapper.wrap(subject_id, material), created_at=utcnow()))
        return key

    def data_key(self, subject_id: str) -> DataKey:
        """The subject's key; raises KeyShredded, UnknownSubject or KeyStoreUnavailable."""
        try:
            with self._db.read() as session:
                return self.data_key_in(session, subject_id)
        except OperationalError as exc:
            raise KeyStoreUnavailable("the consent database did not answer") from exc

    def data_key_in(self, session: Session, subject_id: str) -> DataKey:
        """The subject's key, read in the caller's session."""
        row = session.execute(
            select(data_keys.c.key_id, data_keys.c.wrapped_key)
            .where(data_keys.c.subject_id == subject_id)).first()
        if row is None:
            raise UnknownSubject()
        if row.wrapped_key is None:
            raise KeyShredded()
        return DataKey(row.key_id, self._wrapper.unwrap(subject_id, row.wrapped_key))

    def shred(self, session: Session, subject_id: str) -> str | None:
        """Destroy the subject's key; returns its id, or None if it was already gone."""
        row = session.execute(select(data_keys.c.key_id, data_keys.c.wrapped_key)
                              .where(data_keys.c.subject_id == subject_id)).first()
        if row is None or row.wrapped_key is None:
            return None
        session.execute(data_keys.update().where(data_keys.c.subject_id == subject_id)
                        .values(wrapped_key=None, shredded_at=utcnow()))
        return str(row.key_id)
