"""Alembic environment of the reporting database."""

from services.reporting.adapters.tables import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
