"""The body of every service's Alembic ``env.py``."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
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
