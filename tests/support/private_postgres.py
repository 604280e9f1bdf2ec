"""A PostgreSQL cluster of a test's own, which the test may stop and start (the shared server
on 127.0.0.1:5432 must never be stopped: other tests use it).

``initdb`` into a fresh directory, trust authentication, started by ``pg_ctl`` on a free port
on 127.0.0.1 with its socket in that directory. The server refuses to run as root, so under
root the cluster belongs to the ``postgres`` user, in a directory of its own under the system
temporary folder (pytest's folders are closed to other users), removed afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ops.broker import free_port

BIN = Path(os.environ.get("PEERLINK_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"


class PrivatePostgres:
    """One private cluster: its admin URL, fresh databases, and stop and start."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "server.log"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} {args[1:]} failed ({done.returncode}): "
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")

    def init(self) -> PrivatePostgres:
        """Create the cluster (trust authentication, superuser ``postgres``)."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")
        return self

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back and disconnect; ``immediate``: as a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """Whether the server is up (``pg_ctl status``)."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "status")
        except RuntimeError:
            return False
        return True

    def create_database(self) -> str:
        """A fresh, empty database on this server; returns its URL."""
        name = f"peerlink_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"


def _cluster_root(tmp_path: Path) -> tuple[Path, bool]:
    """Where the cluster lives, and whether it is ours to remove (outside ``tmp_path``)."""
    if os.geteuid() != 0:
        return tmp_path, False
    user = pwd.getpwnam(SERVER_USER)
    root = Path(tempfile.mkdtemp(prefix="peerlink-private-pg-"))
    os.chown(root, user.pw_uid, user.pw_gid)
    return root, True


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    """A started private PostgreSQL cluster, stopped and removed at the end of the test."""
    if not (BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries under {BIN} (set PEERLINK_TEST_POSTGRES_BIN)")
    root, remove = _cluster_root(tmp_path)
    server = PrivatePostgres(root, free_port()).init()
    server.start()
    try:
        yield server
    finally:
        if server.running():
            server.stop("immediate")
        if remove:
            shutil.rmtree(root, ignore_errors=True)
