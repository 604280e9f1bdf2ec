"""``docs/dashboard.png`` from the real demo: ``make screenshot`` (not part of ``make test``).

Starts the whole platform as ``peerlink up --demo`` does (``LocalPlatform`` with the demo's
synthetic traffic), but, like ``tests.support.platform.running_platform``, with a broker of its
own, free ports and a temporary var dir, so it never meets a ``make up`` running beside it.
Then it asks the reporting API as an ops-viewer every few seconds, printing what it sees,
until the dashboard's default view (by organisation, last 12 months) has figures in:

* the engagement funnel: one receiving organisation with referred, matched, attended a session
  and planned endings all published as numbers above 0;
* the coverage table: one organisation with people due and screened published above 0;
* the wellbeing (SWEMWBS) table: one organisation with a mean change published (30 people with
  an intake and an exit score in one episode, and released after 10 people moved).

Then it signs in to the dashboard in Debian's headless Chromium (Playwright) with an ops-viewer
token, as the browser test does, waits until the page shows those figures, writes a full-page
screenshot and stops everything it started. If the figures do not come within the timeout it
says what it last saw, writes nothing and exits 1.

    .venv/bin/python -m tests.support.dashboard_screenshot [--out PATH] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from ops.broker import free_port, port_in_use
from ops.platform import LocalPlatform
from shared.issuer import development_issuer
from shared.kafka.topics import SERVICES
from shared.settings import PlatformSettings

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEW = {"group_by": "org", "period": "last-12-months"}
"""The dashboard's default view, which the screenshot shows."""
FUNNEL = ("referred", "matched", "attended_session", "planned_endings")
POLL_SECONDS = 5.0
PROGRESS_SECONDS = 20.0


def _value(cell: Any) -> int | None:
    """A published count's number (None when suppressed or absent)."""
    return cell.get("value") if isinstance(cell, dict) else None


def _free_offset(settings: PlatformSettings) -> int:
    """A port offset at which none of the platform's ports is taken (below the ephemeral
    range, as ``running_platform`` chooses)."""
    for _ in range(50):
        offset = random.randrange(9000, 24000, 10)
        probe = settings.model_copy(update={"port_offset": offset})
        ports = [probe.issuer_port()] + [f(s) for s in SERVICES
                                         for f in (probe.api_port, probe.worker_port)]
        if not any(port_in_use(probe.http_host, port) for port in ports):
            return offset
    raise RuntimeError("no free range of ports for the platform")


@contextmanager
def demo_platform(var_dir: Path) -> Iterator[PlatformSettings]:
    """The platform with the demo's traffic, on its own broker, ports and ``var_dir``."""
    base = PlatformSettings(var_dir=var_dir)
    bootstrap = f"127.0.0.1:{free_port()}"
    offset = _free_offset(base)
    # the demo as ``peerlink up --demo`` runs it, but none of this shell's PEERLINK_ settings
    # (databases, broker) reach it: everything lives under ``var_dir``
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERLINK_")}
    env.update({"PEERLINK_KAFKA_BOOTSTRAP": bootstrap, "PEERLINK_VAR_DIR": str(var_dir),
                "PEERLINK_PORT_OFFSET": str(offset)})
    settings = PlatformSettings(kafka_bootstrap=bootstrap, var_dir=var_dir, port_offset=offset)
    processes = LocalPlatform(settings, start_broker=True, demo=True, env=env)
    try:
        processes.start()
        yield settings
    finally:
        print("stopping the platform...", flush=True)
        processes.stop()


class Figures:
    """What the reporting API publishes for the dashboard's default view."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.base = f"http://{settings.http_host}:{settings.api_port('reporting')}"
        self.issuer = development_issuer(settings)
        self.engagement: list[dict[str, Any]] = []
        self.coverage: list[dict[str, Any]] = []

    def token(self) -> str:
        return self.issuer.mint("trust", ["ops-viewer"], subject="dashboard-screenshot")

    def read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token()}"}
        for kind in ("engagement", "coverage"):
            response = httpx.get(f"{self.base}/v1/{kind}", params=VIEW, headers=headers,
                                 timeout=10)
            response.raise_for_status()
            setattr(self, kind, response.json()["rows"])

    def funnel_row(self) -> dict[str, Any] | None:
        return next((r for r in self.engagement if all(_value(r.get(k)) for k in FUNNEL)), None)

    def coverage_row(self) -> dict[str, Any] | None:
        return next((r for r in self.coverage if _value(r.get("due"))
                     and _value(r.get("screened"))), None)

    def wellbeing_row(self) -> dict[str, Any] | None:
        return next((r for r in self.engagement
                     if (r.get("swemwbs_change") or {}).get("mean") is not None), None)

    def ready(self) -> bool:
        return bool(self.funnel_row() and self.coverage_row() and self.wellbeing_row())

    def describe(self) -> str:
        """One line: each organisation's funnel, coverage and SWEMWBS figures as published."""
        def shown(cell: Any) -> str:
            return str(cell.get("display")) if isinstance(cell, dict) else "-"

        parts = []
        for row in self.engagement:
            change = row.get("swemwbs_change") or {}
            mean = change.get("mean")
            parts.append(f"{row['org']}: " + " ".join(
                f"{k}={shown(row.get(k))}" for k in (*FUNNEL, "unplanned_endings"))
                + f" swemwbs n={shown(change.get('n'))} mean="
                + ("withheld" if mean is None else f"{mean:+.1f}")
                + (" (held)" if row.get("held") else ""))
        for row in self.coverage:
            parts.append(f"coverage {row['org']}: due={shown(row.get('due'))} "
                         f"screened={shown(row.get('screened'))}")
        return "; ".join(parts) or "nothing published yet"


def wait_for_figures(figures: Figures, timeout: float) -> bool:
    """Poll until every table has figures, printing progress; whether they came in time."""
    started = time.monotonic()
    said = -PROGRESS_SECONDS
    while True:
        elapsed = time.monotonic() - started
        try:
            figures.read()
        except httpx.HTTPError as error:
            print(f"{elapsed:5.0f} s  reporting API: {error}", flush=True)
        else:
            if figures.ready():
                print(f"{elapsed:5.0f} s  every table has figures: {figures.describe()}",
                      flush=True)
                return True
            if elapsed - said >= PROGRESS_SECONDS:
                print(f"{elapsed:5.0f} s  {figures.describe()}", flush=True)
                said = elapsed
        if elapsed >= timeout:
            return False
        time.sleep(POLL_SECONDS)


def screenshot(figures: Figures, out: Path) -> None:
    """Sign in to the dashboard in headless Chromium and write a full-page screenshot."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900},
                                          locale="en-GB", timezone_id="Europe/London")
            page = context.new_page()
            page.goto(f"{figures.base}/dashboard")
            page.get_by_label("Access token").fill(figures.token())
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r"/dashboard$"))
            funnel = page.locator("#engagement-funnel")
            expect(funnel.locator("svg[role=img] rect").first).to_be_visible(timeout=30_000)
            expect(page.locator("#coverage-breakdown svg[role=img] rect").first
                   ).to_be_visible(timeout=30_000)
            expect(page.locator("#engagement-wellbeing table")).to_contain_text(
                re.compile(r"[+-]?\d+\.\d points"), timeout=30_000)
            expect(page.locator("#connection")).to_have_text("live", timeout=30_000)
            out.parent.mkdir(parents=True, exist_ok=True)
            # finished animations: a cell that just changed is not caught mid-highlight
            page.screenshot(path=str(out), full_page=True, animations="disabled")
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DOCS_SCREENSHOT,
                        help="where to write the screenshot (default docs/dashboard.png)")
    parser.add_argument("--timeout", type=float, default=480.0,
                        help="seconds to wait for every table's figures (default 480)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print("Debian's chromium package is not installed (make tools)", file=sys.stderr)
        return 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="peerlink-screenshot-") as var_dir, \
            demo_platform(Path(var_dir)) as settings:
        figures = Figures(settings)
        print(f"waiting up to {args.timeout:.0f} s for the demo's figures "
              f"(every {POLL_SECONDS:.0f} s; progress every {PROGRESS_SECONDS:.0f} s)",
              flush=True)
        if not wait_for_figures(figures, args.timeout):
            print(f"not every table had figures within {args.timeout:.0f} s; last seen: "
                  f"{figures.describe()}", file=sys.stderr)
            return 1
        screenshot(figures, args.out)
    print(f"wrote {args.out} in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
