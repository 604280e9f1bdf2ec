"""Synthetic partner traffic for ``peerlink up --demo``: clearly fake people only.

NHS numbers come from the 999 range, which NHS England reserves for test data; safe-contact
numbers from Ofcom's drama range (07700 900000 to 900999); every free-text field and every
mentor's name says it is synthetic.

About once a second a Trust clinician records that someone's routine enquiry fell due and
then the enquiry itself (one in ten people due are never asked, so coverage stays below
100%). Some people who disclosed abuse go on a mentoring journey, interleaved with the
screenings: the clinician records their peer-mentoring consent (and, for three in four,
their consent to take part in the research, asked apart) and partner-sharing naming a
DVA partner and refers them there; the partner's mentor coordinator matches them with one of
the partner's demo mentors (or waits for the waitlist to match them), records a SWEMWBS intake
score, sessions, usually an exit score, and the ending, planned or not.

Dates: screenings and enquiries due are back-dated over the last eleven months. The mentoring
API stamps a referral and its match with today's date (it takes none), so a journey's
sessions, scores and ending are dated today as well: nothing may come before the referral, nor
lie in the future.

A step that fails prints one line on stderr naming the step and the HTTP status (never a
person's data) and the traffic goes on; people's tokens are renewed at half their lifetime.
"""

from __future__ import annotations

import contextlib
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any, Literal, Protocol, TextIO, get_args

import httpx

from services.mentoring.domain.intervention import DEFAULT_COMPONENTS, DEFAULT_SUPERVISION_TOPICS
from shared.events.vocabulary import AdverseEventKind, NotAskedReason, OfferDeclineReason
from shared.issuer import development_issuer
from shared.settings import PlatformSettings, platform_settings

NOT_ASKED_REASONS: tuple[str, ...] = get_args(NotAskedReason)
ADVERSE_KINDS: tuple[str, ...] = get_args(AdverseEventKind)
DECLINE_REASONS: tuple[str, ...] = get_args(OfferDeclineReason)
FOLLOW_UP_ODDS: tuple[tuple[str, float], ...] = (("3-months", 0.75), ("6-months", 0.65),
                                                 ("12-months", 0.55))
"""The timed follow-ups a mentee who ended as planned gives, each with the odds that they do
(the demo's time is compressed: they follow the ending by a few steps, not months)."""
TEAMS = ("north-cmht", "south-cmht", "early-intervention", "inpatient-ward-3")
BOROUGHS = ("camden", "islington", "haringey", "enfield")
GENDERS = ("female", "male", "non-binary", "not-stated")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
LANGUAGES = ("en", "ur", "pl", "so", "bn")
MODES = ("in-person", "phone", "video")
ATTENDANCE = ("attended", "did-not-attend", "cancelled-by-mentee", "cancelled-by-mentor")
SYNTHETIC = "SYNTHETIC DEMO RECORD - not a real person"
STAFF_NAME = "Demo clinician (synthetic)"
MENTOR_NAME = "Demo mentor"
SUBJECT = "demo-traffic"
SWEMWBS_ITEMS = 7
MENTORS_PER_PARTNER = 8
SUPERVISION_RENEWAL_DAYS = 14
STEP_ATTEMPTS = 3
MAX_JOURNEYS = 200

Stage = Literal["peer-mentoring", "partner-sharing", "refer", "match", "waitlisted", "intake",
                "session", "exit", "end", "follow-up", "done"]


# --- pure generators -----------------------------------------------------------------------

def fake_nhs_numbers(rng: random.Random) -> Iterator[str]:
    """Valid-looking NHS numbers from the reserved test range 999 000 0000 to 999 999 9999."""
    weights = (10, 9, 8, 7, 6, 5, 4, 3, 2)
    while True:
        body = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        check = 11 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11
        if check == 10:
            continue
        yield body + str(0 if check == 11 else check)


def fake_screening(rng: random.Random, nhs_number: str, today: date,
                   outcome: str | None = None) -> dict[str, Any]:
    """A synthetic routine-enquiry record as the Trust's record system would send it, with
    ``outcome`` (else one drawn at random) and what goes with it."""
    outcome = outcome or rng.choices(["asked", "declined", "not-safe-to-ask", "not-asked"],
                                     weights=[8, 1, 1, 1])[0]
    record: dict[str, Any] = {
        "nhs_number": nhs_number, "org": "trust", "team": rng.choice(TEAMS),
        "borough": rng.choice(BOROUGHS), "gender": rng.choice(GENDERS),
        "age_band": rng.choice(AGE_BANDS),
        "asked_on": (today - timedelta(days=rng.randrange(330))).isoformat(),
        "asked_by_role": "care-coordinator", "training_level": rng.choice([1, 2, 3]),
        "private": rng.random() > 0.1, "outcome": outcome,
        "notes": SYNTHETIC,
    }
    if outcome == "asked":
        record["hark"] = {q: rng.random() < 0.12 for q in ("humiliated", "afraid", "raped",
                                                             "kicked")}
        record["past_abuse"] = rng.choices(["yes", "no", "unsure"], weights=[3, 6, 1])[0]
    if outcome == "not-asked":
        record["not_asked_reason"] = rng.choices(NOT_ASKED_REASONS, weights=[4, 3, 3, 1, 2, 1])[0]
    if outcome in ("asked", "declined") and rng.random() < 0.7:
        record["acceptability"] = {
            "acceptable": rng.choices(["yes", "unsure", "no"], weights=[7, 2, 1])[0],
            "comfort": rng.choices([None, 1, 2, 3, 4, 5], weights=[1, 1, 1, 2, 3, 3])[0]}
    return record


def fake_team_training(rng: random.Random, org: str, team: str, today: date
                       ) -> dict[str, Any]:
    """A team's staff trained in routine enquiry, as of today."""
    staff = rng.randrange(8, 30)
    return {"org": org, "team": team, "as_of": today.isoformat(), "staff": staff,
            "trained": rng.randrange(staff // 3, staff + 1)}


def fake_enquiry_due(rng: random.Random, nhs_number: str, org: str, team: str,
                     asked_on: date) -> dict[str, Any]:
    """The enquiry due before a screening: on or before ``asked_on`` and in the same month,
    so that no month's coverage goes above 100%."""
    due_on = asked_on - timedelta(days=rng.randrange(min(asked_on.day, 14)))
    return {"nhs_number": nhs_number, "org": org, "team": team, "due_on": due_on.isoformat()}


@dataclass(frozen=True)
class Mentor:
    """What the demo knows of one of its mentors, to ask for preferences they can meet."""

    mentor_id: str
    org: str
    gender: str
    languages: tuple[str, ...]
    borough: str
    modes: tuple[str, ...]


def fake_mentor(rng: random.Random, org: str, number: int, today: date) -> dict[str, Any]:
    """A matchable synthetic mentor of ``org``: active, trained, checked and supervised."""
    def days_ago(low: int, high: int) -> str:
        return (today - timedelta(days=rng.randrange(low, high))).isoformat()

    return {
        "org": org, "display_name": f"{MENTOR_NAME} {number} (synthetic)",
        "gender": rng.choices(("female", "male", "non-binary"), weights=(7, 2, 1))[0],
        "languages": ["en", *rng.sample(LANGUAGES[1:], rng.randrange(3))],
        "borough": rng.choice(BOROUGHS), "modes": rng.sample(MODES, rng.randint(1, 3)),
        "capacity": rng.randint(1, 3), "training_completed_on": days_ago(60, 700),
        "check_level": "enhanced", "check_completed_on": days_ago(30, 900),
        "supervision_held_on": days_ago(0, SUPERVISION_RENEWAL_DAYS), "status": "active",
    }


def mentor_of(view: dict[str, Any]) -> Mentor:
    """A mentor as the mentoring API shows them to their coordinator."""
    return Mentor(mentor_id=view["id"], org=view["org"], gender=view["gender"],
                  languages=tuple(view["languages"]), borough=view["borough"],
                  modes=tuple(view["modes"]))


def fake_preferences(rng: random.Random, mentor: Mentor | None) -> dict[str, Any]:
    """A mentee's preferences that ``mentor`` meets (so the referral is matched, after the
    waitlist when the few mentors who meet them are full); none when no mentor is known."""
    if mentor is None:
        return {}
    prefs: dict[str, Any] = {}
    if rng.random() < 0.4:
        prefs["mentor_gender"] = mentor.gender
    others = [language for language in mentor.languages if language != "en"]
    if others and rng.random() < 0.4:
        prefs["language"] = rng.choice(others)
    if rng.random() < 0.7:
        prefs["mode"] = rng.choice(mentor.modes)
        if prefs["mode"] == "in-person":
            prefs["borough"] = mentor.borough
    return prefs


def fake_safe_contact(rng: random.Random) -> dict[str, Any]:
    """Safe-contact instructions with a number from Ofcom's drama range."""
    return {"phone": f"07700 900{rng.randrange(1000):03d}",
            "times": rng.choice(("weekday mornings", "after 7pm", "lunchtimes")),
            "may_leave_message": rng.random() < 0.3, "safe_to_call": True,
            "instructions": SYNTHETIC}


def consent_body(purpose: str, recipients: Sequence[str] = ()) -> dict[str, Any]:
    """Consent as a clinician records it after talking it through with the person."""
    body: dict[str, Any] = {"purpose": purpose, "method": "verbal", "recorded_by": STAFF_NAME}
    if recipients:
        body["recipients"] = list(recipients)
    return body


def fake_referral(rng: random.Random, subject_id: str, from_org: str, to_org: str,
                  mentor: Mentor | None) -> dict[str, Any]:
    """A referral from ``from_org`` to the DVA partner ``to_org``."""
    return {"subject_id": subject_id, "referred_by_org": from_org, "to_org": to_org,
            "preferences": fake_preferences(rng, mentor), "safe_contact": fake_safe_contact(rng)}


def fake_swemwbs(rng: random.Random, intake: Sequence[int] | None = None) -> list[int]:
    """Seven SWEMWBS items from 1 to 5: at intake mostly low to middling; at exit each item
    moves from its intake answer, more often up than down."""
    if intake is None:
        return [rng.choices((1, 2, 3, 4, 5), weights=(2, 4, 4, 2, 1))[0]
                for _ in range(SWEMWBS_ITEMS)]
    return [min(5, max(1, item + rng.choices((-1, 0, 1, 2), weights=(1, 4, 4, 1))[0]))
            for item in intake]


def outcome_body(match_id: str, timepoint: str, items: Sequence[int]) -> dict[str, Any]:
    """A SWEMWBS response for the API to score (recorded today)."""
    return {"match_id": match_id, "timepoint": timepoint, "instrument": "SWEMWBS",
            "items": list(items)}


def fake_session(rng: random.Random, match_id: str, held_on: date, mode: str
                 ) -> dict[str, Any]:
    """A session: mostly attended, some not attended, some cancelled."""
    attendance = rng.choices(ATTENDANCE, weights=(70, 15, 10, 5))[0]
    minutes = rng.choice((45, 60, 60, 90)) if attendance == "attended" else 0
    covered = rng.sample(DEFAULT_COMPONENTS, rng.randint(1, 3)) \
        if attendance == "attended" else []
    return {"match_id": match_id, "held_on": held_on.isoformat(), "duration_minutes": minutes,
            "mode": mode, "attendance": attendance, "safeguarding_concern": False,
            "components": covered}


def fake_adverse_event(rng: random.Random, match_id: str, today: date) -> dict[str, Any]:
    """An adverse event, now and then serious."""
    return {"match_id": match_id, "occurred_on": today.isoformat(),
            "kind": rng.choices(ADVERSE_KINDS, weights=(6, 1, 2, 1, 1, 1))[0],
            "serious": rng.random() < 0.2,
            "relatedness": rng.choice(("related", "possibly-related", "unrelated",
                                       "not-known")),
            "details": f"what happened ({SYNTHETIC})"}


def fake_offer(rng: random.Random, org: str, today: date, accepted: bool) -> dict[str, Any]:
    """An offer of mentoring after a disclosure, without personal data."""
    outcome = "accepted" if accepted else rng.choices(("declined", "undecided"), (4, 1))[0]
    body: dict[str, Any] = {
        "org": org, "team": rng.choice(TEAMS), "gender": rng.choice(GENDERS),
        "age_band": rng.choice(AGE_BANDS), "offered_on": today.isoformat(),
        "outcome": outcome}
    if outcome == "declined":
        body["decline_reason"] = rng.choice(DECLINE_REASONS)
    return body


def fake_ending(rng: random.Random, planned: bool) -> dict[str, Any]:
    """A planned or unplanned ending with a synthetic reason (ended today)."""
    reasons = ("goals met", "moved on to other support") if planned else (
        "lost contact", "moved out of the area", "chose to stop")
    ending: dict[str, Any] = {"planned": planned, "reason": f"{rng.choice(reasons)} ({SYNTHETIC})"}
    if planned and rng.random() < 0.8:  # the mentee's feedback, when they give it
        ending["feedback"] = {"helped": rng.choices((1, 2, 3, 4, 5), (1, 1, 2, 4, 4))[0],
                              "made_worse": rng.choices(("no", "unsure", "yes"), (8, 2, 1))[0]}
    return ending


# --- journeys ------------------------------------------------------------------------------

@dataclass
class Journey:
    """One synthetic mentee's way from consent to the ending, one step at a time."""

    subject_id: str
    to_org: str
    mentor: Mentor | None
    sessions: int
    planned_ending: bool
    exit_score: bool
    stage: Stage = "peer-mentoring"
    referral_id: str = ""
    match_id: str = ""
    mode: str = "phone"
    intake: list[int] = field(default_factory=list)
    held: int = 0
    followed_up: int = 0
    """Timed follow-ups given so far (after a planned ending)."""
    attempts: int = 0
    next_at: float = 0.0
    research: bool = False
    """Whether the person took part in the research (the partner records it too, once the
    referral gives it a relationship, so its records join the study's)."""


def plan_journey(rng: random.Random, subject_id: str, to_org: str, mentor: Mentor | None
                 ) -> Journey:
    """A journey's shape: about two in three end as planned, with more sessions and always an
    exit score; the others end unplanned, with fewer sessions and an exit score half the
    time (enough of each kind for a published figure, which moves by 10 people at once)."""
    planned = rng.random() < 0.65
    return Journey(subject_id=subject_id, to_org=to_org, mentor=mentor,
                   sessions=rng.randint(3, 6) if planned else rng.randint(1, 3),
                   planned_ending=planned, exit_score=planned or rng.random() < 0.5)


@dataclass
class Tally:
    """What the demo has done so far (counts only, for the progress line)."""

    due: int = 0
    screened: int = 0
    referred: int = 0
    matched: int = 0
    waitlisted: int = 0
    sessions: int = 0
    intake_and_exit: int = 0
    planned_endings: int = 0
    unplanned_endings: int = 0
    offers: int = 0
    adverse_events: int = 0
    follow_ups: int = 0
    research: int = 0
    failures: int = 0

    def line(self) -> str:
        """One line without personal data."""
        return (f"demo: {self.due} due, {self.screened} screened, {self.referred} referred, "
                f"{self.matched} matched ({self.waitlisted} waitlisted first), "
                f"{self.sessions} sessions, {self.intake_and_exit} with intake and exit "
                f"scores, endings {self.planned_endings} planned / {self.unplanned_endings} "
                f"unplanned, {self.offers} offers, {self.adverse_events} adverse events, "
                f"{self.follow_ups} follow-ups, {self.research} in the research, "
                f"{self.failures} failed steps")


# --- HTTP ----------------------------------------------------------------------------------

class Minter(Protocol):
    """Mints a person's token (the development issuer)."""

    def mint(self, org: str, roles: list[str], subject: str | None = None,
             lifetime_seconds: int | None = None) -> str:
        """A signed token for a person of ``org`` with ``roles``."""
        ...


class Tokens:
    """One token per organisation and role, renewed at half its lifetime (or when refused)."""

    def __init__(self, minter: Minter, lifetime_seconds: float,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._minter = minter
        self._renew_after = lifetime_seconds / 2
        self._now = now
        self._held: dict[tuple[str, str], tuple[str, float]] = {}

    def header(self, org: str, role: str) -> dict[str, str]:
        """The Authorization header for ``role`` at ``org``."""
        token, minted = self._held.get((org, role), ("", 0.0))
        if not token or self._now() - minted >= self._renew_after:
            token, minted = self._minter.mint(org, [role], subject=SUBJECT), self._now()
            self._held[(org, role)] = token, minted
        return {"Authorization": f"Bearer {token}"}

    def forget(self, org: str, role: str) -> None:
        """Drop a token the API refused, so the next call mints a new one."""
        self._held.pop((org, role), None)


_ERROR_CODE = re.compile(r"^[a-z0-9-]{1,40}$")


class StepFailed(Exception):
    """A step the API refused or did not answer; the message names the step and status only."""

    def __init__(self, step: str, status: int | None, error: str | None) -> None:
        self.step = step
        self.status = status
        said = "not answering" if status is None else f"HTTP {status} {error or ''}".strip()
        super().__init__(f"demo: {step} failed: {said}")

    @property
    def retryable(self) -> bool:
        """Whether trying again may help (no answer, refused token, busy, server error)."""
        return self.status is None or self.status in (401, 429) or self.status >= 500


def _error_code(response: httpx.Response) -> str | None:
    """The API's error code (a short slug), never its message or anything sent."""
    with contextlib.suppress(ValueError, AttributeError):
        code = response.json().get("error")
        if isinstance(code, str) and _ERROR_CODE.match(code):
            return code
    return None


class Api:
    """Peerlink's APIs, called as a person of an organisation with one role."""

    def __init__(self, client: httpx.Client, settings: PlatformSettings,
                 tokens: Tokens) -> None:
        self._client = client
        self._settings = settings
        self._tokens = tokens

    def call(self, step: str, service: str, method: str, path: str, org: str, role: str,
             body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON answer, or ``StepFailed``."""
        url = f"http://{self._settings.http_host}:{self._settings.api_port(service)}{path}"
        try:
            response = self._client.request(method, url, json=body,
                                            headers=self._tokens.header(org, role))
        except httpx.HTTPError:
            raise StepFailed(step, None, None) from None
        if response.status_code == 401:
            self._tokens.forget(org, role)
        if response.status_code >= 400:
            raise StepFailed(step, response.status_code, _error_code(response))
        answer: dict[str, Any] = response.json()
        return answer


# --- the traffic ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Pace:
    """How fast the traffic goes: a screening every ``interval`` seconds, each journey's steps
    ``step_gap`` seconds apart (a random span), waitlisted referrals looked at every
    ``waitlist_poll`` seconds, a progress line every ``report_every`` seconds."""

    interval: float = 1.0
    step_gap: tuple[float, float] = (0.5, 3.0)
    waitlist_poll: float = 5.0
    report_every: float = 30.0
    not_screened_share: float = 0.1
    referred_share: float = 0.8


class Traffic:
    """Screenings with their enquiries due, and mentoring journeys, interleaved."""

    def __init__(self, api: Api, settings: PlatformSettings, rng: random.Random,
                 pace: Pace = Pace(), now: Callable[[], float] = time.monotonic,
                 today: Callable[[], date] = date.today,
                 sleep: Callable[[float], None] = time.sleep, out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.api = api
        self.rng = rng
        self.pace = pace
        self.now = now
        self.today = today
        self.sleep = sleep
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tally = Tally()
        self.journeys: list[Journey] = []
        self.mentors: dict[str, list[Mentor]] = {}
        self.trust = next((o for o, c in settings.organisations.items()
                           if c.kind == "nhs-trust"), "trust")
        self.partners = sorted(o for o, c in settings.organisations.items()
                               if c.kind == "dva-partner")
        self._numbers = fake_nhs_numbers(rng)
        self._mentors_due = 0.0
        self._training_due = 0.0
        self._report_due = now() + pace.report_every

    def tick(self) -> None:
        """One interval: a screening (with its enquiry due), then journey steps until the
        interval is up."""
        deadline = self.now() + self.pace.interval
        if self.partners and self.now() >= self._mentors_due:
            self.ensure_mentors()
        if self.now() >= self._training_due:
            self.record_training()
        self.screen_one()
        self.advance(deadline)
        if self.now() >= self._report_due:
            print(self.tally.line(), file=self.out, flush=True)
            self._report_due = self.now() + self.pace.report_every

    def _try(self, call: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """The answer of ``call``, or None after saying on stderr which step failed."""
        try:
            return call()
        except StepFailed as failed:
            self.tally.failures += 1
            print(str(failed), file=self.err, flush=True)
            return None

    # --- screening ---

    def _due(self, nhs_number: str, team: str, asked_on: date) -> bool:
        body = fake_enquiry_due(self.rng, nhs_number, self.trust, team, asked_on)
        done = self._try(lambda: self.api.call("enquiry-due", "screening", "POST",
                                               "/v1/enquiries/due", self.trust, "clinician",
                                               body))
        self.tally.due += done is not None
        return done is not None

    def record_training(self) -> None:
        """Each of the Trust's teams says how many of its staff are trained in routine
        enquiry; again every day (every 30 s until all have)."""
        ok = True
        for team in TEAMS:
            body = fake_team_training(self.rng, self.trust, team, self.today())
            ok &= self._try(partial(self.api.call, "team-training", "screening", "POST",
                                    "/v1/team-training", self.trust, "safeguarding-lead",
                                    body)) is not None
        self._training_due = self.now() + (24 * 3600 if ok else 30)

    def screen_one(self) -> None:
        """Someone's enquiry falls due and they are asked; now and then someone whose
        enquiry fell due is never asked."""
        if self.rng.random() < self.pace.not_screened_share:
            self._due(next(self._numbers), self.rng.choice(TEAMS),
                      self.today() - timedelta(days=self.rng.randrange(330)))
        record = fake_screening(self.rng, next(self._numbers), self.today())
        record["org"] = self.trust
        self._due(record["nhs_number"], record["team"], date.fromisoformat(record["asked_on"]))
        screened = self._try(lambda: self.api.call("screening", "screening", "POST",
                                                   "/v1/screenings", self.trust, "clinician",
                                                   record))
        if screened is None:
            return
        self.tally.screened += record["outcome"] == "asked"
        if screened.get("disclosed"):
            self.offer(str(screened["subject_id"]))

    def offer(self, subject_id: str) -> None:
        """Someone who disclosed is offered peer mentoring: most accept and start a journey;
        the offer is recorded either way, without personal data."""
        accepted = self.rng.random() < self.pace.referred_share
        body = fake_offer(self.rng, self.trust, self.today(), accepted)
        self.tally.offers += self._try(partial(
            self.api.call, "offer", "mentoring", "POST", "/v1/offers", self.trust,
            "clinician", body)) is not None
        if accepted:
            self.start_journey(subject_id)

    # --- mentors ---

    def ensure_mentors(self) -> None:
        """Every DVA partner has its demo mentors, registered or found, and supervised
        recently enough to stay matchable; checked again every six hours."""
        ok = all([self._ensure_mentors_of(org) for org in self.partners])
        self._mentors_due = self.now() + (6 * 3600 if ok else 30)

    def _ensure_mentors_of(self, org: str) -> bool:
        listed = self._try(lambda: self.api.call("mentors", "mentoring", "GET", "/v1/mentors",
                                                 org, "mentor-coordinator"))
        if listed is None:
            return False
        ours = [m for m in listed["mentors"] if m["display_name"].startswith(MENTOR_NAME)
                and m["status"] == "active"]
        for view in ours:
            self._supervise(view)
        for number in range(len(ours) + 1, MENTORS_PER_PARTNER + 1):
            registered = self._register(org, number)
            if registered is not None:
                ours.append(registered)
        self.mentors[org] = [mentor_of(v) for v in ours]
        return len(ours) >= MENTORS_PER_PARTNER

    def _register(self, org: str, number: int) -> dict[str, Any] | None:
        """Register demo mentor ``number`` of ``org``; their view, or None."""
        body = fake_mentor(self.rng, org, number, self.today())
        return self._try(lambda: self.api.call("register-mentor", "mentoring", "POST",
                                               "/v1/mentors", org, "mentor-coordinator",
                                               body))

    def _supervise(self, view: dict[str, Any]) -> None:
        """Supervision for a demo mentor whose last one is a fortnight old or more."""
        last = view.get("last_supervision_on")
        if last and self.today() - date.fromisoformat(last) < timedelta(
                days=SUPERVISION_RENEWAL_DAYS):
            return
        self._try(lambda: self.api.call("supervision", "mentoring", "POST",
                                        f"/v1/mentors/{view['id']}/supervision", view["org"],
                                        "mentor-coordinator",
                                        {"held_on": self.today().isoformat(),
                                         "covered": self.rng.sample(
                                             DEFAULT_SUPERVISION_TOPICS, 2)}))

    # --- journeys ---

    def _partner(self) -> str:
        """The receiving partner: the first takes three in four referrals when there are
        two (so one partner soon has enough people for a published SWEMWBS mean)."""
        weights = [3] + [1] * (len(self.partners) - 1)
        return self.rng.choices(self.partners, weights=weights)[0]

    def start_journey(self, subject_id: str) -> None:
        """A person who disclosed abuse is offered peer mentoring at a DVA partner."""
        if not self.partners or len(self.journeys) >= MAX_JOURNEYS:
            return
        to_org = self._partner()
        known = self.mentors.get(to_org, [])
        mentor = self.rng.choice(known) if known else None
        journey = plan_journey(self.rng, subject_id, to_org, mentor)
        journey.next_at = self.now()
        self.journeys.append(journey)

    def advance(self, deadline: float) -> None:
        """Take the steps that are due, oldest first, until ``deadline``."""
        while self.now() < deadline:
            ready = [j for j in self.journeys if j.next_at <= self.now()]
            if not ready:
                break
            journey = min(ready, key=lambda j: j.next_at)
            self.step(journey)
            if journey.stage == "done":
                self.journeys.remove(journey)
        wait = deadline - self.now()
        if wait > 0:
            self.sleep(wait)

    def step(self, journey: Journey) -> None:
        """Take a journey's next step; a failed one is tried again a few times, a refused one
        (4xx) ends the journey there."""
        try:
            journey.stage = STEPS[journey.stage](self, journey)
            journey.attempts = 0
        except StepFailed as failed:
            self.tally.failures += 1
            print(str(failed), file=self.err, flush=True)
            journey.attempts += 1
            if not failed.retryable or journey.attempts >= STEP_ATTEMPTS:
                journey.stage = "done"
        low, high = self.pace.step_gap
        journey.next_at = self.now() + (self.pace.waitlist_poll if journey.stage == "waitlisted"
                                        else self.rng.uniform(low, high))

    def as_clinician(self, step: str, service: str, path: str, body: dict[str, Any]
                     ) -> dict[str, Any]:
        """A POST by a clinician of the Trust."""
        return self.api.call(step, service, "POST", path, self.trust, "clinician", body)

    def as_coordinator(self, journey: Journey, step: str, path: str,
                       body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A POST (or a GET without a body) by the receiving partner's mentor coordinator."""
        return self.api.call(step, "mentoring", "GET" if body is None else "POST", path,
                             journey.to_org, "mentor-coordinator", body)


RESEARCH_SHARE = 0.75
"""Of the people who consent to peer mentoring, those who also take part in the research."""


def _peer_mentoring_consent(traffic: Traffic, journey: Journey) -> Stage:
    path = f"/v1/subjects/{journey.subject_id}/consents"
    traffic.as_clinician("peer-mentoring-consent", "consent", path,
                         consent_body("peer-mentoring"))
    if traffic.rng.random() < RESEARCH_SHARE:  # asked apart, and most say yes
        traffic.as_clinician("research-consent", "consent", path, consent_body("research"))
        journey.research = True
        traffic.tally.research += 1
    return "partner-sharing"


def _sharing_consent(traffic: Traffic, journey: Journey) -> Stage:
    traffic.as_clinician("partner-sharing-consent", "consent",
                         f"/v1/subjects/{journey.subject_id}/consents",
                         consent_body("partner-sharing", [journey.to_org]))
    return "refer"


def _refer(traffic: Traffic, journey: Journey) -> Stage:
    body = fake_referral(traffic.rng, journey.subject_id, traffic.trust, journey.to_org,
                         journey.mentor)
    journey.referral_id = traffic.as_clinician("referral", "mentoring", "/v1/referrals",
                                               body)["id"]
    journey.mode = body["preferences"].get("mode") or (
        journey.mentor.modes[0] if journey.mentor else "phone")
    traffic.tally.referred += 1
    return "match"


def _matched(traffic: Traffic, journey: Journey, match_id: str) -> Stage:
    journey.match_id = match_id
    traffic.tally.matched += 1
    if journey.research:  # the partner's records join the research under its own consent
        traffic.api.call("partner-research-consent", "consent", "POST",
                         f"/v1/subjects/{journey.subject_id}/consents", journey.to_org,
                         "partner-staff", consent_body("research"))
    return "intake"


def _match(traffic: Traffic, journey: Journey) -> Stage:
    answer = traffic.as_coordinator(journey, "match",
                                    f"/v1/referrals/{journey.referral_id}/match", {})
    if answer["status"] == "matched":
        return _matched(traffic, journey, answer["match_id"])
    traffic.tally.waitlisted += 1
    return "waitlisted"


def _waitlisted(traffic: Traffic, journey: Journey) -> Stage:
    """Whether the waitlist has matched the referral yet (it does when a mentor has room)."""
    view = traffic.as_coordinator(journey, "waitlist", f"/v1/referrals/{journey.referral_id}")
    if view["status"] == "matched" and view.get("match_id"):
        return _matched(traffic, journey, view["match_id"])
    return "waitlisted"


def _intake(traffic: Traffic, journey: Journey) -> Stage:
    journey.intake = fake_swemwbs(traffic.rng)
    traffic.as_coordinator(journey, "intake-score", "/v1/outcomes",
                           outcome_body(journey.match_id, "intake", journey.intake))
    return "session"


def _session(traffic: Traffic, journey: Journey) -> Stage:
    traffic.as_coordinator(journey, "session", "/v1/sessions", fake_session(
        traffic.rng, journey.match_id, traffic.today(), journey.mode))
    traffic.tally.sessions += 1
    if traffic.rng.random() < 0.06:
        traffic.as_coordinator(journey, "adverse-event", "/v1/adverse-events",
                               fake_adverse_event(traffic.rng, journey.match_id,
                                                  traffic.today()))
        traffic.tally.adverse_events += 1
    journey.held += 1
    if journey.held < journey.sessions:
        return "session"
    return "exit" if journey.exit_score else "end"


def _exit(traffic: Traffic, journey: Journey) -> Stage:
    traffic.as_coordinator(journey, "exit-score", "/v1/outcomes", outcome_body(
        journey.match_id, "exit", fake_swemwbs(traffic.rng, journey.intake)))
    traffic.tally.intake_and_exit += 1
    return "end"


def _end(traffic: Traffic, journey: Journey) -> Stage:
    traffic.as_coordinator(journey, "ending", f"/v1/matches/{journey.match_id}/end",
                           fake_ending(traffic.rng, journey.planned_ending))
    if journey.planned_ending:
        traffic.tally.planned_endings += 1
        return "follow-up"
    traffic.tally.unplanned_endings += 1
    return "done"


def _follow_up(traffic: Traffic, journey: Journey) -> Stage:
    """The next timed follow-up, if the mentee gives it; none after one they do not give."""
    timepoint, odds = FOLLOW_UP_ODDS[journey.followed_up]
    if traffic.rng.random() >= odds:
        return "done"
    traffic.as_coordinator(journey, f"follow-up-{timepoint}", "/v1/outcomes", outcome_body(
        journey.match_id, timepoint, fake_swemwbs(traffic.rng, journey.intake)))
    journey.followed_up += 1
    traffic.tally.follow_ups += 1
    return "follow-up" if journey.followed_up < len(FOLLOW_UP_ODDS) else "done"


STEPS: dict[Stage, Callable[[Traffic, Journey], Stage]] = {
    "peer-mentoring": _peer_mentoring_consent, "partner-sharing": _sharing_consent,
    "refer": _refer, "match": _match, "waitlisted": _waitlisted, "intake": _intake,
    "session": _session, "exit": _exit, "end": _end, "follow-up": _follow_up,
}
"""Each stage's step; it returns the stage that follows."""


def run(settings: PlatformSettings, interval_seconds: float = 1.0,
        rng: random.Random | None = None, ticks: int | None = None) -> Tally:
    """Send synthetic traffic until interrupted (or for ``ticks`` intervals), as Trust
    clinicians and partners' mentor coordinators whose tokens the development issuer mints."""
    tokens = Tokens(development_issuer(settings), settings.token_lifetime_seconds)
    with httpx.Client(timeout=10) as client:
        traffic = Traffic(Api(client, settings, tokens), settings, rng or random.Random(),
                          Pace(interval=interval_seconds))
        count = 0
        while ticks is None or count < ticks:
            traffic.tick()
            count += 1
    return traffic.tally


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        run(platform_settings())
