"""Alembic environment of the mentoring database."""

from services.mentoring.adapters.tables import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
