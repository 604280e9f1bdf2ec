"""Synthetic partner traffic for ``peerlink up --demo``: clearly fake people only.

NHS numbers come from the 999 range, which NHS England reserves for test data, and every
record's notes say it is synthetic.
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx

from shared.issuer import development_issuer
from shared.settings import PlatformSettings, platform_settings

TEAMS = ("north-cmht", "south-cmht", "early-intervention", "inpatient-ward-3")
BOROUGHS = ("camden", "islington", "haringey", "enfield")
GENDERS = ("female", "male", "non-binary", "not-stated")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")


def fake_nhs_numbers(rng: random.Random) -> Iterator[str]:
    """Valid-looking NHS numbers from the reserved test range 999 000 0000 to 999 999 9999."""
    weights = (10, 9, 8, 7, 6, 5, 4, 3, 2)
    while True:
        body = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        check = 11 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11
        if check == 10:
            continue
        yield body + str(0 if check == 11 else check)


def fake_screening(rng: random.Random, nhs_number: str, today: date) -> dict[str, Any]:
    """A synthetic routine-enquiry record as the Trust's record system would send it."""
    outcome = rng.choices(["asked", "declined", "not-safe-to-ask"], weights=[8, 1, 1])[0]
    record: dict[str, Any] = {
        "nhs_number": nhs_number, "org": "trust", "team": rng.choice(TEAMS),
        "borough": rng.choice(BOROUGHS), "gender": rng.choice(GENDERS),
        "age_band": rng.choice(AGE_BANDS),
        "asked_on": (today - timedelta(days=rng.randrange(330))).isoformat(),
        "asked_by_role": "care-coordinator", "training_level": rng.choice([1, 2, 3]),
        "private": rng.random() > 0.1, "outcome": outcome,
        "notes": "SYNTHETIC DEMO RECORD - not a real person",
    }
    if outcome == "asked":
        record["hark"] = {q: rng.random() < 0.12 for q in ("humiliated", "afraid", "raped",
                                                             "kicked")}
        record["past_abuse"] = rng.choices(["yes", "no", "unsure"], weights=[3, 6, 1])[0]
    return record


def run(settings: PlatformSettings, interval_seconds: float = 1.0) -> None:
    """Post a synthetic screening every ``interval_seconds`` until interrupted, as a Trust
    clinician whose token the development issuer mints (renewed every hour)."""
    rng = random.Random()
    issuer = development_issuer(settings)
    url = f"http://{settings.http_host}:{settings.api_port('screening')}/v1/screenings"
    numbers = fake_nhs_numbers(rng)
    token, minted = "", 0.0
    with httpx.Client(timeout=10) as client:
        while True:
            if time.monotonic() - minted > 3600 or not token:
                token = issuer.mint("trust", ["clinician"], subject="demo-traffic")
                minted = time.monotonic()
            try:
                client.post(url, json=fake_screening(rng, next(numbers), date.today()),
                            headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError:
                print("demo: screening API not answering; retrying", file=sys.stderr)
            time.sleep(interval_seconds)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        run(platform_settings())
