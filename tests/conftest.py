"""Fixtures for real backing services.

Kafka: ``PEERLINK_KAFKA_BOOTSTRAP``, else testcontainers when a Docker engine answers, else a
local Tansu broker started here. PostgreSQL: ``PEERLINK_TEST_POSTGRES_URL``, else the local
server on 127.0.0.1:5432, else testcontainers. A test whose backing service is missing is
skipped with the reason, never passed.
"""

from __future__ import annotations

import os
import queue
import threading
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


class PostgresDatabases:
    """Makes fresh, empty PostgreSQL databases, and drops each one in a thread of its own once
    its test is done with it (``drop_later``), or at the end of the session: dropping hundreds
    of databases at the end took a minute and a half of ``make test``."""

    def __init__(self, admin_url: str) -> None:
        self._url = admin_url
        self._admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._left: set[str] = set()
        self._lock = threading.Lock()
        self._dropping: queue.Queue[str | None] = queue.Queue()
        self._dropper = threading.Thread(target=self._drop_each, name="drop-test-databases",
                                         daemon=True)
        self._dropper.start()

    def __call__(self) -> str:
        """A new empty database's URL."""
        name = f"peerlink_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        with self._lock:
            self._left.add(name)
        return make_url(self._url).set(database=name).render_as_string(hide_password=False)

    def drop_later(self, url: str) -> None:
        """Drop the database of ``url`` in the background (its test is over)."""
        name = make_url(url).database
        with self._lock:
            if name not in self._left:
                return
            self._left.discard(name)
        self._dropping.put(name)

    def _drop(self, name: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _drop_each(self) -> None:
        while (name := self._dropping.get()) is not None:
            self._drop(name)

    def close(self) -> None:
        """Drop every database still there, once the background drops are done."""
        self._dropping.put(None)
        self._dropper.join()
        for name in sorted(self._left):
            self._drop(name)
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty PostgreSQL databases, all dropped by the end of the session."""
    databases = PostgresDatabases(postgres_admin_url)
    yield databases
    databases.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> str:
    """An empty database of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'service.db'}"
    databases: PostgresDatabases = request.getfixturevalue("postgres_database")
    url = databases()
    request.addfinalizer(lambda: databases.drop_later(url))
    return url
