"""Migrating a service's database: its Alembic scripts, found by the service's name."""

from __future__ import annotations

import importlib

from shared.migrations import upgrade


def migrate(service: str, url: str) -> None:
    """Bring a service database to the newest Alembic revision."""
    upgrade(importlib.import_module(f"services.{service}.adapters.migrations"), url)
