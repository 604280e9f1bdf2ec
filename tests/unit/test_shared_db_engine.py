"""Opening a service database: an SQLite too old for what the services ask of it is refused
at start, with its version named, not met as a failed statement on the first write."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import db
from shared.db import make_engine


def test_an_sqlite_too_old_for_returning_is_refused_at_start(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(db.sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(db.sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(RuntimeError, match=r"SQLite 3\.34\.1 is too old.*3\.35 or later"):
        make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    assert not (tmp_path / "old.db").exists()


def test_the_sqlite_here_is_new_enough(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()
