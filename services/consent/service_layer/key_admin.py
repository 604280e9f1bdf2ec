"""Key-store administration: rotating the master key, and re-applying erasures after a restore.

Rotation re-wraps every live data key under the new master key and recomputes every NHS-number
lookup with the key derived from it, in one transaction: either all of it or none. After a
restore from a backup, ``reapply_shredding`` destroys again every key the log says was shredded,
so a person erased after the backup stays erased.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from services.consent.adapters.tables import data_keys, subjects
from services.consent.domain.subjects import NhsNumberLookup
from shared.crypto import DataKey, KeyWrapper, KnownKeys, PersonalDataCipher, derive_key
from shared.db import UnitOfWork, utcnow
from shared.events.envelope import EncryptedBlock


@dataclass(frozen=True)
class Rotation:
    """What a master-key rotation re-wrapped."""

    data_keys: int
    lookups: int


def rotate_master_key(uow: UnitOfWork, old_master: bytes, new_master: bytes) -> Rotation:
    """Re-wrap every live data key and recompute every NHS-number lookup."""
    old = KeyWrapper(derive_key(old_master, "data-key wrapping"))
    new = KeyWrapper(derive_key(new_master, "data-key wrapping"))
    lookup = NhsNumberLookup(derive_key(new_master, "nhs-number lookup"))
    session = uow.session
    rewrapped = lookups = 0
    rows = session.execute(select(data_keys.c.subject_id, data_keys.c.key_id,
                                  data_keys.c.wrapped_key)
                           .where(data_keys.c.wrapped_key.is_not(None))).all()
    for row in rows:
        material = old.unwrap(row.subject_id, row.wrapped_key)
        session.execute(update(data_keys).where(data_keys.c.subject_id == row.subject_id)
                        .values(wrapped_key=new.wrap(row.subject_id, material)))
        rewrapped += 1
        sealed = session.execute(select(subjects.c.nhs_number_sealed).where(
            subjects.c.subject_id == row.subject_id)).scalar()
        if sealed is not None:
            cipher = PersonalDataCipher(KnownKeys({row.subject_id: DataKey(row.key_id,
                                                                           material)}))
            opened = cipher.open(row.subject_id, "subject.nhs_number",
                                 EncryptedBlock.model_validate_json(sealed))
            if isinstance(opened, dict):
                session.execute(update(subjects).where(
                    subjects.c.subject_id == row.subject_id).values(
                    nhs_lookup=lookup.digest(opened["nhs_number"])))
                lookups += 1
    return Rotation(rewrapped, lookups)


def reapply_shredding(uow: UnitOfWork, shredded_subjects: set[str]) -> int:
    """Destroy again the keys and identifier mappings of people the log says were erased;
    returns how many had come back with a restored backup (scrub the database afterwards)."""
    session = uow.session
    revived = session.execute(select(data_keys.c.subject_id).where(
        data_keys.c.subject_id.in_(shredded_subjects),
        data_keys.c.wrapped_key.is_not(None))).scalars().all()
    now = utcnow()
    if shredded_subjects:
        session.execute(update(data_keys).where(
            data_keys.c.subject_id.in_(shredded_subjects),
            data_keys.c.wrapped_key.is_not(None)).values(wrapped_key=None, shredded_at=now))
        session.execute(update(subjects).where(
            subjects.c.subject_id.in_(shredded_subjects),
            subjects.c.erased_at.is_(None)).values(
            nhs_lookup=None, nhs_number_sealed=None, local_lookup=None,
            safeguarding_pseudonym=None, safe_contact_sealed=None,
            safe_contact_updated_at=None, erased_at=now))
    return len(revived)
