"""Migrating a service's database: its Alembic scripts, found by the service's name."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config


def migrate(service: str, url: str) -> None:
    """Bring a service database to the newest Alembic revision."""
    package = importlib.import_module(f"services.{service}.adapters.migrations")
    script_location = Path(next(iter(package.__path__)))
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")
