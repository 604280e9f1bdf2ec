"""Alembic environment of the consent database."""

from services.consent.adapters.tables import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
