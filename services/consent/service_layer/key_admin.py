"""Key-store administration: rotating the master key, and re-applying erasures after a restore.

Rotation re-wraps every live data key under the new master key and recomputes every NHS-number
and local-identifier lookup with the key derived from it, in one transaction: either all of it
or none. After a restore from a backup, ``reapply_shredding`` destroys again every key the log
says was shredded, so a person erased after the backup stays erased.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update

from services.consent.adapters.tables import data_keys, safe_contacts, subjects
from services.consent.domain.subjects import NhsNumberLookup
from services.consent.service_layer.subjects import (
    FORGOTTEN_ON_ERASURE,
    LOCAL_ID_CONTEXT,
    NHS_NUMBER_CONTEXT,
)
from shared.crypto import DataKey, KeyWrapper, KnownKeys, PersonalDataCipher, derive_key
from shared.db import UnitOfWork, utcnow
from shared.events.envelope import EncryptedBlock


@dataclass(frozen=True)
class Rotation:
    """What a master-key rotation re-wrapped."""

    data_keys: int
    lookups: int


def rotate_master_key(uow: UnitOfWork, old_master: bytes, new_master: bytes) -> Rotation:
    """Re-wrap every live data key and recompute every NHS-number and local-identifier
    lookup."""
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
        lookups += _recompute_lookups(uow, lookup, row.subject_id,
                                      DataKey(row.key_id, material))
    return Rotation(rewrapped, lookups)


def _recompute_lookups(uow: UnitOfWork, lookup: NhsNumberLookup, subject_id: str,
                       key: DataKey) -> int:
    """Recompute the subject's NHS-number and local-identifier look-ups from what they hold
    sealed; returns how many."""
    row = uow.session.execute(select(subjects.c.nhs_number_sealed, subjects.c.local_id_sealed,
                                     subjects.c.registered_by_org)
                              .where(subjects.c.subject_id == subject_id)).first()
    if row is None:
        return 0
    cipher = PersonalDataCipher(KnownKeys({subject_id: key}))
    values: dict[str, str] = {}
    if row.nhs_number_sealed is not None:
        opened = cipher.open(subject_id, NHS_NUMBER_CONTEXT,
                             EncryptedBlock.model_validate_json(row.nhs_number_sealed))
        if isinstance(opened, dict):
            values["nhs_lookup"] = lookup.digest(opened["nhs_number"])
    if row.local_id_sealed is not None:
        opened = cipher.open(subject_id, LOCAL_ID_CONTEXT,
                             EncryptedBlock.model_validate_json(row.local_id_sealed))
        if isinstance(opened, dict):
            values["local_lookup"] = lookup.local_digest(row.registered_by_org,
                                                         opened["local_id"])
    if values:
        uow.session.execute(update(subjects).where(subjects.c.subject_id == subject_id)
                            .values(values))
    return len(values)


def reapply_shredding(uow: UnitOfWork, shredded_subjects: set[str]) -> int:
    """Destroy again the keys and the mappings (NHS number, local identifier, pseudonym, safe
    contact) of people the log says were erased; returns how many had come back with a
    restored backup (scrub the database afterwards)."""
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
            {**FORGOTTEN_ON_ERASURE, "erased_at": now}))
        session.execute(delete(safe_contacts).where(
            safe_contacts.c.subject_id.in_(shredded_subjects)))
    return len(revived)
