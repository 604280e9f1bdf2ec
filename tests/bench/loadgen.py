"""HTTP load from a process of its own, for ``tests.bench.bench_platform``.

``python -m tests.bench.loadgen closed SPEC OUT``: ``concurrency`` keep-alive connections
(asyncio + httpx.AsyncClient), each sending its next request as soon as the last is answered,
through the spec's phases in order (slices of one or more endpoints, so that two endpoints are
measured side by side); per endpoint: requests answered 2xx per second, p50, p99, errors and the
generator's own CPU share.

``python -m tests.bench.loadgen steady SPEC OUT``: POST /v1/screenings open-loop at a fixed
rate, event ``i`` for team ``<prefix>-<i // group>`` (so each team gets ``group`` people);
every request's scheduled, queued and answered wall-clock times and status (requests still
waiting for a connection when the window closes are not sent).

``python -m tests.bench.loadgen serve PORT``: a trivial HTTP/1.1 keep-alive server (raw
asyncio), to show how fast the generator itself goes against something that costs nothing.

Bodies are synthetic routine enquiries (``ops.demo``: fake NHS numbers from the 999 range).
Every loop is bounded in time; the spec names only loopback URLs.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from ops.demo import TEAMS, fake_nhs_numbers, fake_screening

ASKED_ON = date(2026, 11, 2)
"""The enquiries' date, as ``RunningPlatform.screening`` has it (period 2026-11)."""
BODY_POOL = 4096
"""Distinct bodies made before a closed-loop run and sent in turn."""
TIMEOUT_SECONDS = 30.0
NOT_SENT = "not-sent"
"""A steady-rate request that found no free connection before the sending window closed."""


def screening_body(rng: random.Random, numbers: Iterator[str], team: str | None = None
                   ) -> dict[str, Any]:
    """A valid synthetic enquiry like ``RunningPlatform.screening``: asked, HARK answered."""
    record = fake_screening(rng, next(numbers), ASKED_ON, outcome="asked")
    record.update(team=team or rng.choice(TEAMS), asked_on=ASKED_ON.isoformat(),
                  outcome="asked",
                  hark={q: rng.random() < 0.12 for q in ("humiliated", "afraid", "raped",
                                                         "kicked")},
                  past_abuse=rng.choice(["yes", "no", "unsure"]))
    return record


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0-100) of ``values``, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


class Endpoint:
    """What one endpoint's requests did across the slices it was measured in."""

    def __init__(self, method: str, url: str, body: bool) -> None:
        self.method = method
        self.url = url
        self.body = body
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def summary(self) -> dict[str, Any]:
        """Rate, percentiles (ms), errors and generator CPU share (of one core)."""
        ok = len(self.latencies)
        p50, p99 = percentile(self.latencies, 50), percentile(self.latencies, 99)
        return {"method": self.method, "url": self.url, "ok": ok,
                "errors": dict(self.errors), "seconds": round(self.seconds, 3),
                "rps": ok / self.seconds if self.seconds else 0.0,
                "p50_ms": None if p50 is None else p50 * 1000,
                "p99_ms": None if p99 is None else p99 * 1000,
                "max_ms": max(self.latencies) * 1000 if ok else None,
                "generator_cpu_share": (self.cpu_seconds / self.seconds
                                        if self.seconds else 0.0)}


class Connections:
    """``count`` keep-alive connections, one ``httpx.AsyncClient`` each (a client's own pool
    holds one): one client with a pool of 32 spends several times the CPU per request (its
    pool looks at every connection for every request; encode/httpx#3215), so the generator
    would measure itself rather than the server."""

    def __init__(self, count: int, headers: dict[str, str]) -> None:
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.clients = [httpx.AsyncClient(limits=one, timeout=TIMEOUT_SECONDS,
                                          headers=headers) for _ in range(count)]
        self._idle: asyncio.LifoQueue[httpx.AsyncClient] = asyncio.LifoQueue()
        for client in self.clients:
            self._idle.put_nowait(client)

    async def send(self, method: str, url: str, content: bytes | None,
                   headers: dict[str, str], deadline: float | None = None) -> int | str:
        """One request on an idle connection (waiting for one, until the wall-clock
        ``deadline`` if given: then ``NOT_SENT``): its status, or the error's class name."""
        if deadline is None:
            client = await self._idle.get()
        else:
            try:
                client = await asyncio.wait_for(self._idle.get(), deadline - time.time())
            except TimeoutError:
                return NOT_SENT
        try:
            response = await client.request(method, url, content=content, headers=headers)
            return response.status_code
        except httpx.HTTPError as exc:
            return type(exc).__name__
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        """Close every connection."""
        await asyncio.gather(*(client.aclose() for client in self.clients))


async def _slice(connections: Connections, endpoint: Endpoint, seconds: float,
                 bodies: list[bytes], record: bool) -> None:
    """Every connection on one endpoint for ``seconds``, each sending again when answered."""
    stop_at = time.perf_counter() + seconds
    counter = iter(range(10**9))
    headers = {"Content-Type": "application/json"} if endpoint.body else {}

    async def connection() -> None:
        while time.perf_counter() < stop_at:
            content = bodies[next(counter) % len(bodies)] if endpoint.body else None
            started = time.perf_counter()
            status = await connections.send(endpoint.method, endpoint.url, content, headers)
            elapsed = time.perf_counter() - started
            if not record:
                continue
            if isinstance(status, int) and 200 <= status < 300:
                endpoint.latencies.append(elapsed)
            else:
                endpoint.errors[str(status)] += 1

    began, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(connection() for _ in connections.clients))
    if record:
        endpoint.seconds += time.perf_counter() - began
        endpoint.cpu_seconds += time.process_time() - cpu


async def closed(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed-loop load through the spec's phases; a summary per endpoint."""
    concurrency = int(spec["concurrency"])
    endpoints = {name: Endpoint(e["method"], e["url"], bool(e.get("body")))
                 for name, e in spec["endpoints"].items()}
    rng = random.Random(spec.get("seed"))
    numbers = fake_nhs_numbers(rng)
    bodies = [json.dumps(screening_body(rng, numbers)).encode() for _ in range(BODY_POOL)]
    auth = {"Authorization": f"Bearer {spec['token']}"} if spec.get("token") else {}
    connections = Connections(concurrency, auth)
    try:
        for name in spec.get("warmup", []):
            await _slice(connections, endpoints[name], float(spec.get("warmup_seconds", 2)),
                         bodies, record=False)
        for name, seconds in spec["phases"]:
            await _slice(connections, endpoints[name], float(seconds), bodies, record=True)
    finally:
        await connections.close()
    return {"concurrency": concurrency,
            "endpoints": {name: e.summary() for name, e in endpoints.items()}}


async def steady(spec: dict[str, Any]) -> dict[str, Any]:
    """Open-loop POSTs at ``rate`` per second for ``seconds`` (at most ``cap`` in flight); a
    request still waiting for a connection when the window closes is not sent (``NOT_SENT``),
    so a saturated API bounds the run instead of stretching it."""
    rate, seconds = float(spec["rate"]), float(spec["seconds"])
    group, prefix, cap = int(spec["group"]), str(spec["prefix"]), int(spec.get("cap", 128))
    total = int(rate * seconds)
    rng = random.Random(spec.get("seed"))
    numbers = fake_nhs_numbers(rng)
    teams = [f"{prefix}-{i // group:05d}" for i in range(total)]
    bodies = [json.dumps(screening_body(rng, numbers, team)).encode() for team in teams]
    records: list[list[Any]] = [[] for _ in range(total)]
    connections = Connections(cap, {"Authorization": f"Bearer {spec['token']}"})
    headers = {"Content-Type": "application/json"}

    async def send(i: int, scheduled: float) -> None:
        queued = time.time()
        status = await connections.send("POST", spec["url"], bodies[i], headers, closes)
        records[i] = [teams[i], scheduled, queued, time.time(), status]

    began = time.time()
    closes = began + seconds
    try:
        tasks = []
        for i in range(total):
            scheduled = began + i / rate
            delay = scheduled - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i, scheduled)))
        await asyncio.gather(*tasks)
    finally:
        await connections.close()
    return {"rate": rate, "seconds": seconds, "group": group, "prefix": prefix,
            "began": began, "ended": time.time(), "records": records}


class _Trivial(asyncio.Protocol):
    """Answers every request on a connection with the same small 200, keeping it alive."""

    ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
              b"content-length: 15\r\n\r\n{\"status\":\"ok\"}")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:  # requests without bodies (GET)
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(self.ANSWER)


async def serve(port: int, lifetime_seconds: float = 600.0) -> None:
    """The trivial server on 127.0.0.1:``port``, for at most ``lifetime_seconds``."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Trivial, "127.0.0.1", port)
    async with server:
        await asyncio.sleep(lifetime_seconds)


def main(argv: list[str]) -> int:
    """``closed SPEC OUT``, ``steady SPEC OUT`` or ``serve PORT``."""
    if len(argv) == 2 and argv[0] == "serve":
        asyncio.run(serve(int(argv[1])))
        return 0
    if len(argv) != 3 or argv[0] not in ("closed", "steady"):
        print("usage: loadgen closed|steady SPEC OUT | loadgen serve PORT", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text())
    result = asyncio.run(closed(spec) if argv[0] == "closed" else steady(spec))
    Path(argv[2]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
