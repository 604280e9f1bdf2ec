"""Alembic environment of the screening database."""

from services.screening.adapters.tables import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
