"""Fixtures for real backing services.

Kafka: ``PEERLINK_KAFKA_BOOTSTRAP``, else testcontainers when a Docker engine answers, else a
local Tansu broker started here. PostgreSQL: ``PEERLINK_TEST_POSTGRES_URL``, else the local
server on 127.0.0.1:5432, else testcontainers. A test whose backing service is missing is
skipped with the reason, never passed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ops.broker import LocalBroker, free_port

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def docker_engine_answers() -> bool:
    """Whether a Docker engine answers (testcontainers needs one)."""
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka-protocol broker for the whole session."""
    configured = os.environ.get("PEERLINK_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    with LocalBroker(free_port()) as broker:
        yield broker.bootstrap


def _postgres_admin_url() -> str | None:
    url = os.environ.get("PEERLINK_TEST_POSTGRES_URL") or LOCAL_POSTGRES
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception:
        return None
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server URL with the right to create databases."""
    url = _postgres_admin_url()
    if url is not None:
        yield url
        return
    if docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as container:
            yield container.get_connection_url()
        return
    pytest.skip("no PostgreSQL: set PEERLINK_TEST_POSTGRES_URL, run one on 127.0.0.1:5432, "
                "or provide a Docker engine")


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty PostgreSQL databases, dropped at the end of the session."""
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create() -> str:
        name = f"peerlink_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return make_url(postgres_admin_url).set(database=name).render_as_string(
            hide_password=False)

    yield create
    with admin.connect() as connection:
        for name in created:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> str:
    """An empty database of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'service.db'}"
    factory: Callable[[], str] = request.getfixturevalue("postgres_database")
    return factory()
