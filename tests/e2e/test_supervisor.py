"""``peerlink up`` supervises: run for real as a subprocess on its own broker, ports and var
dir, a worker killed with ``kill -9`` is restarted and answers again; a process that keeps
crashing (five kills within a minute) stops the platform with exit code 1, naming it and
showing the end of its log; deliberate stops and signals are never restarted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from ops.broker import LocalBroker, free_port
from ops.platform import LocalPlatform
from ops.supervision import RestartPolicy
from shared.settings import API_PORTS, WORKER_PORTS, PlatformSettings
from tests.support.platform import answers

pytestmark = pytest.mark.kafka


class Up:
    """A ``peerlink up`` process and its merged output."""

    def __init__(self, process: subprocess.Popen[bytes], output: Path, offset: int) -> None:
        self.process = process
        self.output = output
        self.offset = offset

    def text(self) -> str:
        """Everything it printed so far."""
        return self.output.read_text(errors="replace")

    def child_pid(self, *command: str) -> int | None:
        """The pid of its live child running ``python -m ops.cli <command>``."""
        wanted = "\0".join(("ops.cli", *command)) + "\0"
        task_dir = Path(f"/proc/{self.process.pid}/task")
        for task in task_dir.iterdir():
            for pid in (task / "children").read_text().split():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_text()
                except OSError:
                    continue
                if cmdline.endswith(wanted):
                    return int(pid)
        return None


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    env = {k: v for k, v in os.environ.items() if k != "PEERLINK_KAFKA_BOOTSTRAP"}
    offset = random.randrange(9000, 24000, 10)  # below the ephemeral range, as the e2e tests
    env.update(PEERLINK_VAR_DIR=str(tmp_path / "var"), PEERLINK_PORT_OFFSET=str(offset),
               PEERLINK_ENV="test", PYTHONUNBUFFERED="1")
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "up", "--broker-port", str(free_port())],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    running = Up(process, output, offset)
    try:
        until(lambda: "Peerlink is up" in running.text() or process.poll() is not None, 240,
              "peerlink up ready")
        assert process.poll() is None, running.text()
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # it stops every child, then the broker
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_killed_worker_is_restarted_and_a_crash_loop_stops_the_platform(up: Up) -> None:
    worker = until(lambda: up.child_pid("worker", "reporting"), 10, "reporting worker pid")
    os.kill(worker, signal.SIGKILL)

    until(lambda: "reporting-worker exited (code -9); restarting in 1 s" in up.text(), 30,
          "the restart line")
    restarted = until(lambda: (pid := up.child_pid("worker", "reporting")) not in (None, worker)
                      and pid, 30, "a new reporting worker")
    health = f"http://127.0.0.1:{WORKER_PORTS['reporting'] + up.offset}/healthz"
    until(lambda: answers(health), 120, "the restarted worker's /healthz")
    assert up.child_pid("worker", "reporting") == restarted
    assert up.process.poll() is None

    # the mentoring API dies five times within a minute: restarting will not help
    killed: list[int] = []
    for _ in range(5):
        pid = until(lambda: (p := up.child_pid("api", "mentoring")) not in (None, *killed)
                    and p, 30, "a new mentoring API")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    code = up.process.wait(timeout=90)

    printed = up.text()
    assert code == 1, printed
    assert [f"mentoring-api exited (code -9); restarting in {d} s" in printed
            for d in (1, 2, 4, 8)] == [True] * 4
    assert "mentoring-api crashed 5 times within 60 s (last exit code -9); stopping" in printed
    log = up.output.parent / "var" / "logs" / "mentoring-api.log"
    tail = [line for line in log.read_text(errors="replace").splitlines() if line][-3:]
    assert tail and all(line in printed.split("crashed 5 times", 1)[1] for line in tail)
    assert not answers(f"http://127.0.0.1:{API_PORTS['screening'] + up.offset}/healthz")


def test_deliberate_stops_and_signals_are_not_restarted_and_a_kill_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The supervision loop itself, on stand-in children (``python -m timeit`` sleeping)."""
    processes = LocalPlatform(PlatformSettings(var_dir=tmp_path), start_broker=False)
    (tmp_path / "logs").mkdir()
    sleeper = ["-n", "1", "-r", "1", "import time; time.sleep(120)"]
    for name in ("stopped", "signalled", "killed"):
        processes._spawn_module("timeit", name, dict(os.environ), sleeper)
    policy = RestartPolicy(first_delay=0.1, window_seconds=60)
    supervised: list[int] = []
    loop = threading.Thread(target=lambda: supervised.append(processes.supervise(policy, 0.05)),
                            daemon=True)
    loop.start()
    try:
        children = processes._children
        processes.stop_process("stopped", grace_seconds=5)
        processes.signal_process("signalled", signal.SIGTERM)
        until(lambda: "signalled" not in children, 10, "the signalled child forgotten")
        killed = [children["killed"].pid]
        for _ in range(5):  # killed from outside, as a crash: restarted, until five in a minute
            os.kill(killed[-1], signal.SIGKILL)
            until(lambda: supervised or ("killed" in children
                                         and children["killed"].pid != killed[-1]), 20,
                  "the killed child restarted")
            if not supervised:
                killed.append(children["killed"].pid)
        loop.join(timeout=20)
    finally:
        processes.stop(grace_seconds=5)

    printed = capsys.readouterr()
    assert supervised == [1]
    assert len(killed) == 5  # four restarts, then it gave up
    assert "killed exited (code -9); restarting in 0.1 s" in printed.out
    assert "killed exited (code -9); restarting in 0.8 s" in printed.out
    assert "killed crashed 5 times within 60 s" in printed.err
    assert "stopped exited" not in printed.out + printed.err
    assert "signalled exited" not in printed.out + printed.err



def test_processes_stopped_while_the_loop_looks_at_them_are_forgotten_not_restarted(
        tmp_path: Path) -> None:
    """Found by CI, twice: ``stop_process`` took a child away while ``supervise`` was looking
    at it (the loop died of a KeyError), then a child that had just exited by itself and was
    waiting to restart could not be stopped (``stop_process`` raised, and the loop restarted
    it anyway). However the stops and the exits interleave, none raises, nothing stopped comes
    back, and the loop goes on supervising."""
    processes = LocalPlatform(PlatformSettings(var_dir=tmp_path), start_broker=False)
    (tmp_path / "logs").mkdir()
    names = [f"short-{n}" for n in range(12)]
    for name in names:  # each exits by itself in a moment, as the stops arrive
        processes._spawn_module("timeit", name, dict(os.environ),
                                ["-n", "1", "-r", "1", "import time; time.sleep(0.3)"])
    processes._spawn_module("timeit", "sentinel", dict(os.environ),
                            ["-n", "1", "-r", "1", "import time; time.sleep(120)"])
    loop = threading.Thread(target=lambda: processes.supervise(
        RestartPolicy(first_delay=0.1, window_seconds=60), 0.001), daemon=True)
    loop.start()
    try:
        time.sleep(0.25)
        for name in names:
            processes.stop_process(name, grace_seconds=5)
        time.sleep(1.0)  # ten times the back-off: a restart still waiting would have happened
        assert not set(names) & set(processes._children)
        sentinel = processes._children["sentinel"].pid
        os.kill(sentinel, signal.SIGKILL)
        until(lambda: "sentinel" in processes._children
              and processes._children["sentinel"].pid != sentinel, 20,
              "the loop still supervising (the sentinel restarted)")
        assert loop.is_alive()
    finally:
        processes.stop(grace_seconds=5)


def test_stopping_a_process_that_waits_to_restart_cancels_the_restart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A process that died by itself is in its back-off; stopping it then keeps it down (the
    operator's word wins over the restart), and a name that is neither running nor waiting is
    an error that says so."""
    processes = LocalPlatform(PlatformSettings(var_dir=tmp_path), start_broker=False)
    (tmp_path / "logs").mkdir()
    processes._spawn_module("timeit", "brief", dict(os.environ), ["-n", "1", "-r", "1", "pass"])
    loop = threading.Thread(target=lambda: processes.supervise(
        RestartPolicy(first_delay=1.0, window_seconds=60), 0.01), daemon=True)
    loop.start()
    try:
        printed: list[str] = []
        until(lambda: printed.append(capsys.readouterr().out)
              or "brief exited (code 0); restarting in 1 s" in "".join(printed), 20,
              "the exit seen and a restart scheduled")
        processes.stop_process("brief", grace_seconds=5)
        time.sleep(1.5)  # past the back-off
        assert "brief" not in processes._children
        assert loop.is_alive()
        with pytest.raises(KeyError, match="no process named 'brief'"):
            processes.stop_process("brief")
    finally:
        processes.stop(grace_seconds=5)


def test_a_broker_that_dies_is_started_again_with_its_topics_and_a_dead_childs_group_is_ended(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The local broker is supervised like the services (its topics were in memory, so they
    are created again); a child that dies takes what it started with it, so nothing it left
    keeps its ports from its replacement."""
    port = free_port()
    settings = PlatformSettings(var_dir=tmp_path, kafka_bootstrap=f"127.0.0.1:{port}")
    processes = LocalPlatform(settings, start_broker=False)
    (tmp_path / "logs").mkdir()
    processes._broker = LocalBroker(port, tmp_path / "logs" / "broker.log").start()
    spawner = subprocess.Popen(  # a child with a child of its own
        [sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen([sys.executable, "
         "'-c', 'import time; time.sleep(120)']); time.sleep(120)"], start_new_session=True)
    processes._children["spawner"] = spawner
    processes._commands["spawner"] = ("timeit", ["-n", "1", "-r", "1", "pass"], {})
    until(lambda: len(group_members(spawner.pid)) == 2, 20, "the spawner's own child")
    policy = RestartPolicy(first_delay=0.1, window_seconds=60)
    supervised: list[int] = []
    loop = threading.Thread(target=lambda: supervised.append(processes.supervise(policy, 0.05)),
                            daemon=True)
    loop.start()
    try:
        processes.signal_broker(signal.SIGKILL)
        until(lambda: "screening.events" in topic_names(settings.kafka_bootstrap), 60,
              "the broker back with its topics")
        os.kill(spawner.pid, signal.SIGKILL)
        until(lambda: not group_members(spawner.pid), 20, "the spawner's group ended")
        assert not supervised
    finally:
        processes.stop(grace_seconds=5)
    assert "the local broker exited; restarting it in 0.1 s" in capsys.readouterr().out


def topic_names(bootstrap: str) -> list[str]:
    """The topics the broker at ``bootstrap`` holds (none while it does not answer)."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    except KafkaError:
        return []
    try:
        return list(admin.list_topics())
    finally:
        admin.close()


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members
