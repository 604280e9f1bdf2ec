"""shared.db on both backends."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, create_engine
from sqlalchemy.orm import Session

from shared.db import insert_if_absent


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
