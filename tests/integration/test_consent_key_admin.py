"""Master-key rotation and re-applying erasures after a restore, on both databases."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from services.consent.adapters.tables import data_keys, subjects
from services.consent.bootstrap import ConsentAdapters, master_key
from services.consent.entrypoints.api import build_api
from services.consent.service_layer import key_admin
from shared.crypto import KeyShredded
from shared.db import utcnow
from tests.support.consent import consent_on
from tests.support.services import approve_erasure, bearer


@pytest.fixture
def consent(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[ConsentAdapters]:
    with consent_on(database_url, tmp_path, monkeypatch) as running:
        yield running.adapters


def erase(service: ConsentAdapters, subject_id: str) -> None:
    """Erasure as it happens: requested with a withdrawal, then approved by the Trust's DPO."""
    client = TestClient(build_api(service))
    filed = client.post(f"/v1/subjects/{subject_id}/withdrawals",
                        json={"purposes": ["all"], "erasure": True, "method": "verbal"},
                        headers=bearer(service.settings, "trust", "clinician"))
    assert filed.status_code == 202, filed.text
    approve_erasure(client, service.settings, filed.json()["erasure_request_id"], "trust")


def register(service: ConsentAdapters, nhs_number: str) -> tuple[int, str]:
    response = TestClient(build_api(service)).post(
        "/v1/subjects", json={"nhs_number": nhs_number},
        headers=bearer(service.settings, "trust", "clinician"))
    return response.status_code, str(response.json()["subject_id"])


def test_rotation_rewraps_keys_and_lookups_and_keeps_erasures(consent: ConsentAdapters,
                                                              tmp_path: Path) -> None:
    _, kept = register(consent, "943 476 5919")
    _, erased = register(consent, "987 654 3210")
    key_before = consent.keys.data_key(kept)
    erase(consent, erased)
    new_key = os.urandom(32)
    old_key = master_key(consent.settings)

    with consent.database.unit_of_work() as uow:
        done = key_admin.rotate_master_key(uow, old_key, new_key)

    assert (done.data_keys, done.lookups) == (1, 1), "the erased person's key stays destroyed"
    key_file = tmp_path / "new-master.key"
    key_file.write_text(base64.b64encode(new_key).decode())
    rotated = ConsentAdapters(consent.settings.model_copy(update={"master_key_file": key_file}))
    assert rotated.keys.data_key(kept) == key_before
    assert rotated.keys.data_key(kept).material == key_before.material
    assert register(rotated, "9434765919") == (201, kept), "the lookup still finds the person"
    with pytest.raises(KeyShredded):
        rotated.keys.data_key(erased)


def test_erasures_after_a_backup_are_applied_again_after_restoring_it(
        consent: ConsentAdapters) -> None:
    _, subject = register(consent, "943 476 5919")
    mappings = ("nhs_lookup", "nhs_number_sealed", "local_lookup", "local_id_sealed",
                "safeguarding_pseudonym", "erased_at")
    contacts = consent.database.metadata.tables["safe_contacts"]
    with consent.database.unit_of_work() as uow:  # what the identity features also hold
        uow.session.execute(update(subjects).where(subjects.c.subject_id == subject).values(
            local_lookup="l" * 64, local_id_sealed=b"sealed", safeguarding_pseudonym="p" * 64))
        uow.session.execute(insert(contacts).values(
            subject_id=subject, org="trust", safe_contact_sealed=b"sealed",
            updated_at=utcnow()))
    with consent.database.read() as session:
        backup = session.execute(select(data_keys.c.wrapped_key).where(
            data_keys.c.subject_id == subject)).scalar_one()
        restored = dict(session.execute(select(*(subjects.c[m] for m in mappings)).where(
            subjects.c.subject_id == subject)).one()._mapping)
    erase(consent, subject)
    with consent.database.unit_of_work() as uow:  # the restore brings key and mappings back
        uow.session.execute(update(data_keys).where(data_keys.c.subject_id == subject)
                            .values(wrapped_key=backup, shredded_at=None))
        uow.session.execute(update(subjects).where(subjects.c.subject_id == subject)
                            .values(**restored))
        uow.session.execute(insert(contacts).values(
            subject_id=subject, org="trust", safe_contact_sealed=b"sealed",
            updated_at=utcnow()))
    assert consent.keys.data_key(subject).key_id

    with consent.database.unit_of_work() as uow:
        assert key_admin.reapply_shredding(uow, {subject}) == 1
    with consent.database.unit_of_work() as uow:
        assert key_admin.reapply_shredding(uow, {subject}) == 0

    with pytest.raises(KeyShredded):
        consent.keys.data_key(subject)
    with consent.database.read() as session:
        row = session.execute(select(*(subjects.c[m] for m in mappings)).where(
            subjects.c.subject_id == subject)).one()
    assert row.erased_at is not None
    assert all(getattr(row, m) is None for m in mappings if m != "erased_at")
    with consent.database.read() as session:
        assert session.execute(select(contacts)).all() == []
    status, again = register(consent, "9434765919")
    assert (status, again != subject) == (201, True)


@pytest.mark.kafka
def test_reapply_shredding_reads_the_erasures_from_the_log(
        consent: ConsentAdapters, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from kafka import KafkaProducer

    from ops.cli import main
    from shared.events.consent import SubjectKeyShredded
    from shared.events.envelope import CloudEvent
    from shared.kafka.producer import create_topics
    from shared.kafka.topics import TopicSpec
    from shared.settings import platform_settings

    _, subject = register(consent, "943 476 5919")
    create_topics(kafka_bootstrap, [TopicSpec("consent.events", "consent", "events")], 3)
    event = CloudEvent.wrap(SubjectKeyShredded(key_id="dk_x", withdrawal_id="wd_x"),
                            source="/peerlink/consent", subject=subject)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send("consent.events", key=subject.encode(), value=event.to_bytes()).get(10)
    producer.close()
    monkeypatch.setenv("PEERLINK_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("PEERLINK_VAR_DIR", str(consent.settings.var_dir))
    platform_settings.cache_clear()
    try:
        assert main(["consent", "reapply-shredding"]) == 0
    finally:
        platform_settings.cache_clear()

    assert "1 keys had come back" in capsys.readouterr().out
    with pytest.raises(KeyShredded):
        consent.keys.data_key(subject)
