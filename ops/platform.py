"""``peerlink up``: the whole platform on one machine, stopped cleanly with Ctrl-C.

Starts the local broker (unless ``PEERLINK_KAFKA_BOOTSTRAP`` names a cluster), creates the
topics, migrates every database, runs each service's API and worker as its own process, waits
until every ``/healthz`` answers, then prints the URLs and a development token. While it runs,
a process that dies is restarted with back-off; one that keeps crashing stops the platform
(``ops.supervision``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

import httpx

from ops.broker import LocalBroker, port_in_use, wait_for_port
from ops.migrations import migrate
from ops.supervision import GiveUp, RestartPolicy
from shared.issuer import development_issuer
from shared.kafka.client import client_options
from shared.kafka.producer import create_topics
from shared.kafka.topics import SERVICES, registry
from shared.settings import PlatformSettings

LOG_TAIL_LINES = 20
BROKER = "broker"
"""The local broker's name in the restart policy and its log (``broker.log``)."""


class LocalPlatform:
    """Every Peerlink process, supervised from one terminal."""

    def __init__(self, settings: PlatformSettings, *, start_broker: bool, demo: bool = False,
                 env: Mapping[str, str] | None = None) -> None:
        self._settings = settings
        self._start_broker = start_broker
        self._demo = demo
        self._env = dict(os.environ if env is None else env)
        self._broker: LocalBroker | None = None
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._children_lock = threading.Lock()
        """Held to change ``_children``: a test or an operator stops and signals processes
        from another thread while ``supervise`` runs."""
        self._commands: dict[str, tuple[str, list[str], dict[str, str]]] = {}
        self._deliberate: set[str] = set()
        self._due: dict[str, float] = {}
        """When each process that died is to be started again (``supervise``); under the
        children lock too, so a stop can cancel a restart that is waiting."""
        self._log_dir = settings.var_dir / "logs"

    def start(self) -> None:
        """Bring everything up and wait until it is healthy."""
        started = time.monotonic()
        self._check_ports_free()
        self._log_dir.mkdir(parents=True, exist_ok=True)
        env = self._env
        if self._start_broker:
            host, port = self._settings.kafka_bootstrap.rsplit(":", 1)
            self._broker = LocalBroker(int(port), self._log_dir / "broker.log").start()
            print(f"broker     Tansu on {self._broker.bootstrap} (memory storage)")
        else:
            host, port = self._settings.kafka_bootstrap.split(",")[0].rsplit(":", 1)
            wait_for_port(host, int(port))
        print(f"topics     {len(self._create_topics())} created")
        for service in SERVICES:
            migrate(service, self._settings.database_url(service))
        print("databases  migrated")
        development_issuer(self._settings)
        self._spawn(["issuer"], "issuer", env)
        self._wait_healthy([f"http://{self._settings.http_host}:"
                            f"{self._settings.issuer_port()}/healthz"])
        print(f"issuer     http://{self._settings.http_host}:{self._settings.issuer_port()} "
              "(development tokens; keys under var/keys)")
        for service in SERVICES:
            for kind in ("api", "worker"):
                self._spawn([kind, service], f"{service}-{kind}", env)
        self._wait_healthy(self._service_health_urls())
        print(f"ready in {time.monotonic() - started:.1f} s")
        if self._demo:
            self._spawn_demo(env)

    def _create_topics(self) -> list[str]:
        return create_topics(self._settings.kafka_bootstrap,
                             registry(self._settings.organisations,
                                      sensitive_retention_ms=(
                                          self._settings.sensitive_topic_retention_ms())),
                             self._settings.topic_partitions,
                             self._settings.topic_replication,
                             **client_options(self._settings))

    def _check_ports_free(self) -> None:
        ports = [self._settings.issuer_port()] + [
            f(s) for s in SERVICES for f in (self._settings.api_port, self._settings.worker_port)]
        busy = [port for port in ports if port_in_use(self._settings.http_host, port)]
        if busy:
            raise RuntimeError(f"ports already in use: {', '.join(map(str, busy))}; is "
                               "another Peerlink still running?")

    def _spawn(self, args: list[str], name: str, env: dict[str, str]) -> None:
        self._spawn_module("ops.cli", name, env, args)

    def _spawn_demo(self, env: dict[str, str]) -> None:
        self._spawn_module("ops.demo", "demo", env)
        print("demo       synthetic partner traffic (fake people) is flowing")

    def _spawn_module(self, module: str, name: str, env: dict[str, str],
                      args: list[str] | None = None) -> None:
        self._commands[name] = (module, list(args or []), env)
        self._deliberate.discard(name)
        with self._children_lock:
            self._popen(name)

    def _popen(self, name: str) -> None:
        """Start ``name``'s command, holding the children lock."""
        module, args, env = self._commands[name]
        with (self._log_dir / f"{name}.log").open("ab") as log:
            self._children[name] = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", module, *args], env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def stop_process(self, name: str, grace_seconds: float = 20.0) -> None:
        """Stop one process (``screening-worker``), as if it had gone down. One that died by
        itself and waits to be restarted stays down: its restart is cancelled."""
        with self._children_lock:
            child = self._children.pop(name, None)
            waiting = self._due.pop(name, None)
        if child is None:
            if waiting is None:
                raise KeyError(f"no process named {name!r} is running or waiting to restart")
            return
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    def signal_process(self, name: str, signum: int = signal.SIGKILL) -> None:
        """Send ``signum`` to one process's group (``kill -9`` by default), as a fault would;
        a killed process is forgotten, so ``start_process`` can start it again. Deliberate:
        the supervision of ``run`` does not restart a process that this signal ends."""
        child = self._children[name]
        if signum not in (signal.SIGSTOP, signal.SIGCONT):
            self._deliberate.add(name)
        os.killpg(child.pid, signum)
        if signum == signal.SIGKILL:
            child.wait()
            if self._forget(name, child):  # before supervise saw it: nothing to tell it
                self._deliberate.discard(name)

    def restart_broker(self, down_seconds: float = 0.0) -> None:
        """Stop the local broker (its memory-only topics are gone), wait, start it again on the
        same port and create the topics again, as ``make up`` after a restart would."""
        if self._broker is None:
            raise RuntimeError("this platform did not start the broker")
        self._broker.stop()
        time.sleep(down_seconds)
        self._broker.start()
        self._create_topics()

    def signal_broker(self, signum: int) -> None:
        """Send ``signum`` to the local broker (SIGSTOP freezes it, SIGCONT resumes it)."""
        if self._broker is None:
            raise RuntimeError("this platform did not start the broker")
        self._broker.signal(signum)

    def start_process(self, name: str, command: str | None = None, **env: str) -> None:
        """Start one service process (``mentoring-worker``) again, or another one under a new
        name running ``command`` (such as a second ``reporting-worker``) with ``env`` added."""
        service, kind = (command or name).rsplit("-", 1)
        self._spawn([kind, service], name, {**self._env, **env})

    def _service_health_urls(self) -> list[str]:
        host = self._settings.http_host
        urls = [f"http://{host}:{self._settings.api_port(s)}/healthz" for s in SERVICES]
        urls += [f"http://{self._settings.worker_host}:{self._settings.worker_port(s)}/healthz"
                 for s in SERVICES]
        return urls

    def _wait_healthy(self, urls: list[str], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(urls)
        while pending and time.monotonic() < deadline:
            for name, child in self._children.items():
                if child.poll() is not None:
                    raise RuntimeError(f"{name} exited during start-up (code {child.returncode})"
                                       f"; {self._log_tail(name, 5)}")
            for url in sorted(pending):
                try:
                    if httpx.get(url, timeout=1.0).status_code == 200:
                        pending.discard(url)
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
        if pending:
            raise TimeoutError(f"not healthy in time: {', '.join(sorted(pending))}")

    def describe(self) -> str:
        """The URLs and a development token, for the person at the terminal."""
        lines = ["", "Peerlink is up:"]
        for service in SERVICES:
            lines.append(f"  {service:<10} API http://{self._settings.http_host}:"
                         f"{self._settings.api_port(service)}  (docs /docs)   worker http://"
                         f"{self._settings.worker_host}:{self._settings.worker_port(service)}"
                         "/healthz")
        lines.append(f"  {'issuer':<10} http://{self._settings.http_host}:"
                     f"{self._settings.issuer_port()}/.well-known/jwks.json  (development)")
        token = development_issuer(self._settings).mint(
            "trust", ["clinician", "ops-viewer", "dpo"], subject="dev-up")
        lines += ["", "Development token (org trust; roles clinician, ops-viewer, dpo):",
                  f"  {token}", "", f"Logs: {self._log_dir}/   Stop: Ctrl-C"]
        return "\n".join(lines)

    def stop(self, grace_seconds: float = 20.0) -> None:
        """Stop every process (SIGTERM, then SIGKILL after the grace period), then the broker.
        They are forgotten first, so a supervision loop still running restarts none of them."""
        with self._children_lock:
            children = list(self._children.values())
            self._children.clear()
            self._due.clear()
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if self._broker is not None:
            self._broker.stop()
            self._broker = None

    def _log_tail(self, name: str, lines: int) -> str:
        log = self._log_dir / f"{name}.log"
        tail = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
        return f"the end of {log}:\n" + "\n".join(tail)

    def _forget(self, name: str, child: subprocess.Popen[bytes]) -> bool:
        """Forget ``child`` if it is still the process known as ``name``; whether it was."""
        with self._children_lock:
            if self._children.get(name) is not child:
                return False
            del self._children[name]
            return True

    def _exited(self, name: str, child: subprocess.Popen[bytes], code: int,
                policy: RestartPolicy) -> bool:
        """``child`` ended: forget it and schedule its restart, in one hold of the lock so a
        stop arriving meanwhile finds it running or cancels the restart; whether to give up."""
        with self._children_lock:
            if self._children.get(name) is not child:
                return False  # stopped or signalled away meanwhile
            del self._children[name]
            _end_group(child.pid)  # what it started must not keep its ports
            if name in self._deliberate:
                self._deliberate.discard(name)
                return False
            decision = policy.exited(name)
            if isinstance(decision, GiveUp):
                print(f"{name} crashed {decision.crashes} times within "
                      f"{decision.window_seconds:g} s (last exit code {code}); stopping "
                      f"Peerlink; {self._log_tail(name, LOG_TAIL_LINES)}",
                      file=sys.stderr, flush=True)
                return True
            print(f"{name} exited (code {code}); restarting in {decision.delay_seconds:g} s",
                  flush=True)
            self._due[name] = time.monotonic() + decision.delay_seconds
            return False

    def _restart_due(self, policy: RestartPolicy) -> None:
        """Start again each process whose back-off has passed (the broker first). A process
        is taken from ``_due`` and started under one hold of the lock, so a stop either
        cancels its restart or finds it running."""
        now = time.monotonic()
        if self._due.get(BROKER, now + 1) <= now:
            with self._children_lock:
                del self._due[BROKER]
            self.restart_broker()
            policy.started(BROKER)
        with self._children_lock:
            for name in [n for n, at in self._due.items() if at <= now and n != BROKER]:
                del self._due[name]
                self._popen(name)
                policy.started(name)

    def supervise(self, policy: RestartPolicy, poll_seconds: float = 0.5) -> int:
        """Restart every process that dies (unless stopped deliberately) after the policy's
        back-off, until one crashes too often: then say which, show the end of its log and
        return 1. Returns only then (Ctrl-C raises ``KeyboardInterrupt``)."""
        for name in self._children:
            policy.started(name)
        if self._broker is not None:
            policy.started(BROKER)
        while True:
            for name, child in list(self._children.items()):
                code = child.poll()
                if code is not None and self._exited(name, child, code, policy):
                    return 1
            broker_down = self._broker is not None and not self._broker.running()
            if broker_down and BROKER not in self._due:
                decision = policy.exited(BROKER)
                if isinstance(decision, GiveUp):
                    print(f"the local broker stopped {decision.crashes} times within "
                          f"{decision.window_seconds:g} s; stopping Peerlink; "
                          f"{self._log_tail(BROKER, LOG_TAIL_LINES)}", file=sys.stderr,
                          flush=True)
                    return 1
                print(f"the local broker exited; restarting it in {decision.delay_seconds:g} s "
                      "(its topics were in memory: the relays publish their outboxes again)",
                      flush=True)
                with self._children_lock:
                    self._due[BROKER] = time.monotonic() + decision.delay_seconds
            self._restart_due(policy)
            time.sleep(poll_seconds)

    def run(self, policy: RestartPolicy | None = None) -> int:
        """Start, print, supervise until Ctrl-C or SIGTERM (exit 0) or until a process crashes
        too often (exit 1), stop."""
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGHUP, _interrupt)  # the terminal closed: stop everything too
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
        try:
            self.start()
            print(self.describe(), flush=True)
            return self.supervise(policy or RestartPolicy())
        except KeyboardInterrupt:
            print("\nstopping...", flush=True)
            return 0
        finally:
            self.stop()


def _end_group(pgid: int) -> None:
    """Kill whatever is left of a dead child's process group (each child leads its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
