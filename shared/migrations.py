"""Alembic for every service: the body of its ``env.py``, and bringing a database up to date
from its migrations package."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData

from shared.db import UtcDateTime, make_engine


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write ``UtcDateTime`` into migrations as the plain column type it stores."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(metadata: MetaData) -> None:
    """Run the pending migrations online against ``sqlalchemy.url``."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set")
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite",
                          compare_type=True, render_item=_render_item)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def upgrade(migrations: ModuleType, url: str) -> None:
    """Bring the database at ``url`` to the newest revision of the ``migrations`` package (a
    service's ``adapters.migrations``)."""
    config = Config()
    config.set_main_option("script_location", str(Path(next(iter(migrations.__path__)))))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
