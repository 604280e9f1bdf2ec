"""shared.db on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, select
from sqlalchemy.orm import Session

from shared.db import Database, insert_if_absent, service_metadata


def test_insert_if_absent_reports_a_skipped_insert(database_url: str) -> None:
    metadata = MetaData()
    table = Table("probe_insert_if_absent", metadata, Column("k", String(10), primary_key=True))
    engine = create_engine(database_url)
    metadata.create_all(engine)
    try:
        with Session(engine) as session, session.begin():
            assert insert_if_absent(session, table, k="a") is True
            assert insert_if_absent(session, table, k="a") is False
    finally:
        metadata.drop_all(engine)
        engine.dispose()


def test_steps_kept_for_last_run_in_order_just_before_commit_and_never_after_a_failure(
        database_url: str) -> None:
    metadata = service_metadata()
    table = Table("probe_last_steps", metadata, Column("k", String(10), primary_key=True))
    database = Database(database_url, metadata)
    metadata.create_all(database.engine, tables=[table])
    ran: list[str] = []
    try:
        with database.unit_of_work() as uow:
            uow.last(lambda: ran.append("first"))
            uow.last(lambda: uow.session.execute(table.insert().values(k="last")))
            uow.session.execute(table.insert().values(k="body"))
            ran.append("body")
        with pytest.raises(RuntimeError), database.unit_of_work() as uow:
            uow.last(lambda: ran.append("never"))
            raise RuntimeError("the body failed")
        with database.read() as session:
            stored = set(session.execute(select(table.c.k)).scalars())
        assert ran == ["body", "first"]
        assert stored == {"body", "last"}  # the last step's write committed with the body
    finally:
        metadata.drop_all(database.engine, tables=[table])
        database.dispose()
