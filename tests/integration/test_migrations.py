"""Every service database migrates on both backends, and the migrations match the models."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect

from ops.migrations import migrate
from shared.kafka.topics import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_exactly_the_models_schema(service: str, database_url: str) -> None:
    metadata: MetaData = importlib.import_module(f"services.{service}.adapters.tables").metadata

    migrate(service, database_url)
    migrate(service, database_url)  # a second run is a no-op

    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert set(metadata.tables) <= set(inspect(connection).get_table_names())
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert diff == [], f"{service}: models and migrations differ; add a migration: {diff}"
