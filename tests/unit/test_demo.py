"""The demo's synthetic traffic: its records are valid requests, clearly synthetic, and its
journeys call the APIs in order with the right role, going on after failures (no I/O: the
APIs are an in-memory fake behind httpx's mock transport)."""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from ops import demo
from services.consent.entrypoints.routes.consents import ConsentIn
from services.mentoring.domain.intervention import DEFAULT_COMPONENTS
from services.mentoring.domain.matching import (
    EligibilityRules,
    MentorProfile,
    Preferences,
    choose_mentor,
    not_matchable_because,
)
from services.mentoring.service_layer.commands import (
    EndMatch,
    LogSession,
    RecordAdverseEvent,
    RecordOffer,
    RecordOutcome,
    ReferMentee,
    RegisterMentor,
)
from services.screening.service_layer.commands import (
    RecordEnquiryDue,
    RecordScreening,
    RecordTeamTraining,
)
from shared.identity import normalise_nhs_number
from shared.settings import PlatformSettings

TODAY = date(2026, 11, 20)
SEEDS = range(200)
NHS_NUMBER = next(demo.fake_nhs_numbers(random.Random(0)))


def profile(mentor: demo.Mentor, view: dict[str, Any]) -> MentorProfile:
    """The matching profile of a freshly registered demo mentor."""
    return MentorProfile(
        mentor_id=mentor.mentor_id, gender=mentor.gender, languages=frozenset(mentor.languages),
        borough=mentor.borough, modes=frozenset(mentor.modes),  # type: ignore[arg-type]
        capacity=view["capacity"], status=view["status"],
        training_completed_on=date.fromisoformat(view["training_completed_on"]),
        check_completed_on=date.fromisoformat(view["check_completed_on"]),
        last_supervision_on=date.fromisoformat(view["supervision_held_on"]))


def registered(seed: int) -> tuple[demo.Mentor, dict[str, Any]]:
    """A demo mentor's registration body and the mentor as the demo then knows them."""
    body = demo.fake_mentor(random.Random(seed), "partner-a", 1, TODAY)
    return demo.mentor_of({"id": f"mnt_{seed}", **body}), body


# --- generators ----------------------------------------------------------------------------

def test_nhs_numbers_are_valid_and_from_the_reserved_test_range() -> None:
    numbers = demo.fake_nhs_numbers(random.Random(1))
    drawn = [next(numbers) for _ in range(300)]
    assert all(normalise_nhs_number(n) == n and n.startswith("999") for n in drawn)
    assert len(set(drawn)) > 290


def test_the_same_seed_gives_the_same_records() -> None:
    def records(seed: int) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        return [demo.fake_screening(rng, NHS_NUMBER, TODAY),
                demo.fake_mentor(rng, "partner-a", 1, TODAY), demo.fake_safe_contact(rng)]

    assert records(5) == records(5)
    assert records(5) != records(6)


@pytest.mark.parametrize("seed", SEEDS[:50])
def test_an_enquiry_due_comes_on_or_before_its_screening_in_the_same_month(seed: int) -> None:
    rng = random.Random(seed)
    screening = RecordScreening.model_validate(demo.fake_screening(rng, NHS_NUMBER, TODAY))
    due = RecordEnquiryDue.model_validate(demo.fake_enquiry_due(
        rng, NHS_NUMBER, "trust", screening.team, screening.asked_on))
    assert due.due_on <= screening.asked_on
    assert (due.due_on.year, due.due_on.month) == (screening.asked_on.year,
                                                   screening.asked_on.month)
    assert TODAY - timedelta(days=366) < due.due_on


def test_screenings_are_marked_synthetic_and_vary_in_outcome() -> None:
    rng = random.Random(3)
    records = [demo.fake_screening(rng, NHS_NUMBER, TODAY) for _ in range(200)]
    assert all(r["notes"] == demo.SYNTHETIC for r in records)
    assert {r["outcome"] for r in records} == {"asked", "declined", "not-safe-to-ask",
                                               "not-asked"}


def test_screenings_carry_reasons_not_asked_and_views_of_being_asked_that_validate() -> None:
    rng = random.Random(5)
    records = [demo.fake_screening(rng, NHS_NUMBER, TODAY) for _ in range(400)]
    for record in records:
        RecordScreening.model_validate(record)
    reasons = {r["not_asked_reason"] for r in records if r["outcome"] == "not-asked"}
    assert reasons == set(demo.NOT_ASKED_REASONS)
    answers = [r["acceptability"] for r in records if "acceptability" in r]
    assert {a["acceptable"] for a in answers} == {"yes", "unsure", "no"}
    assert {a["comfort"] for a in answers} == {None, 1, 2, 3, 4, 5}


@pytest.mark.parametrize("outcome", ["asked", "declined", "not-safe-to-ask", "not-asked"])
def test_a_screening_of_a_chosen_outcome_carries_what_goes_with_it(outcome: str) -> None:
    rng = random.Random(11)
    for _ in range(30):
        record = demo.fake_screening(rng, NHS_NUMBER, TODAY, outcome=outcome)
        assert RecordScreening.model_validate(record).outcome == outcome


def test_every_team_records_its_staff_training_once_a_day() -> None:
    apis = FakeApis(disclosed=lambda n: False)
    traffic, _ = traffic_for(apis)
    run_ticks(traffic, 5)
    training = [c for c in apis.calls if c.path == "/v1/team-training"]
    assert [(c.org, c.role) for c in training] == [("trust", "safeguarding-lead")] * len(
        demo.TEAMS)
    assert {RecordTeamTraining.model_validate(c.body).team for c in training} == set(demo.TEAMS)


@pytest.mark.parametrize("seed", SEEDS[:50])
def test_a_demo_mentor_is_valid_and_matchable(seed: int) -> None:
    mentor, body = registered(seed)
    RegisterMentor.model_validate(body)
    assert body["display_name"].startswith(demo.MENTOR_NAME)
    assert "synthetic" in body["display_name"]
    assert not_matchable_because(profile(mentor, body), TODAY, EligibilityRules()) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_a_referrals_preferences_are_met_by_the_mentor_they_were_drawn_from(seed: int) -> None:
    mentor, body = registered(seed)
    referral = demo.fake_referral(random.Random(seed + 1000), "sub_" + "a" * 32, "trust",
                                  "partner-a", mentor)
    command = ReferMentee.model_validate(referral)
    wanted = Preferences(**command.preferences.model_dump())
    chosen = choose_mentor(wanted, [profile(mentor, body)], TODAY, EligibilityRules())
    assert chosen.mentor_id == mentor.mentor_id
    assert command.safe_contact.phone.startswith("07700 900")  # Ofcom's drama range
    assert demo.SYNTHETIC in (command.safe_contact.instructions or "")


def test_preferences_sometimes_ask_for_a_language_or_mode_and_none_without_a_mentor() -> None:
    rng = random.Random(9)
    mentors = [registered(seed)[0] for seed in range(100)]
    drawn = [demo.fake_preferences(rng, m) for m in mentors]
    assert any("language" in p for p in drawn) and any("mode" in p for p in drawn)
    assert all(p.get("language") != "en" for p in drawn)
    assert demo.fake_preferences(rng, None) == {}


def test_swemwbs_responses_are_complete_and_mostly_improve_at_exit() -> None:
    rng = random.Random(11)
    pairs = []
    for _ in range(300):
        intake = demo.fake_swemwbs(rng)
        exit_ = demo.fake_swemwbs(rng, intake)
        for timepoint, items in (("intake", intake), ("exit", exit_)):
            RecordOutcome.model_validate(demo.outcome_body("mat_1", timepoint, items))
        pairs.append((sum(intake), sum(exit_)))
    assert all(abs(after - before) <= 2 * demo.SWEMWBS_ITEMS for before, after in pairs)
    improved = sum(after > before for before, after in pairs)
    assert 0.6 * len(pairs) < improved < len(pairs)


def test_sessions_and_endings_are_valid_and_of_every_kind() -> None:
    rng = random.Random(13)
    sessions = [LogSession.model_validate(demo.fake_session(rng, "mat_1", TODAY, "phone"))
                for _ in range(300)]
    assert {s.attendance for s in sessions} == set(demo.ATTENDANCE)
    assert all((s.duration_minutes > 0) == (s.attendance == "attended") for s in sessions)
    assert not any(s.safeguarding_concern for s in sessions)
    for planned in (True, False):
        ending = EndMatch.model_validate(demo.fake_ending(rng, planned))
        assert ending.planned is planned and demo.SYNTHETIC in (ending.reason or "")


def test_consents_are_recorded_as_a_clinician_would() -> None:
    mentoring = ConsentIn.model_validate(demo.consent_body("peer-mentoring"))
    sharing = ConsentIn.model_validate(demo.consent_body("partner-sharing", ["partner-b"]))
    assert (mentoring.method, mentoring.recorded_by) == ("verbal", demo.STAFF_NAME)
    assert mentoring.recipients == () and sharing.recipients == ("partner-b",)


def test_journeys_are_planned_with_both_kinds_of_ending() -> None:
    rng = random.Random(17)
    journeys = [demo.plan_journey(rng, "sub_1", "partner-a", None) for _ in range(200)]
    planned = [j for j in journeys if j.planned_ending]
    assert 0.5 * len(journeys) < len(planned) < 0.9 * len(journeys)
    assert all(j.exit_score and 3 <= j.sessions <= 6 for j in planned)
    assert any(not j.exit_score for j in journeys if not j.planned_ending)


# --- tokens --------------------------------------------------------------------------------

class Minter:
    """A fake issuer: the token names its organisation, role and how many came before."""

    def __init__(self) -> None:
        self.minted = 0

    def mint(self, org: str, roles: list[str], subject: str | None = None,
             lifetime_seconds: int | None = None) -> str:
        assert subject == demo.SUBJECT
        self.minted += 1
        return f"{org} {roles[0]} {self.minted}"


def test_tokens_are_renewed_at_half_their_lifetime_and_when_refused() -> None:
    clock = [0.0]
    minter = Minter()
    tokens = demo.Tokens(minter, 100, now=lambda: clock[0])
    first = tokens.header("trust", "clinician")
    clock[0] = 49.0
    assert tokens.header("trust", "clinician") == first
    assert tokens.header("partner-a", "mentor-coordinator") != first
    clock[0] = 50.0
    renewed = tokens.header("trust", "clinician")
    assert renewed != first
    tokens.forget("trust", "clinician")
    assert tokens.header("trust", "clinician") != renewed
    assert minter.minted == 4


# --- the traffic against a fake of the APIs --------------------------------------------------

@dataclass
class Call:
    """One request the demo made."""

    method: str
    path: str
    org: str
    role: str
    token: str
    body: dict[str, Any] | None


Answer = Callable[[Call], tuple[int, dict[str, Any]]]


@dataclass
class FakeApis:
    """Peerlink's APIs as far as the demo needs them; ``answers`` overrides by path pattern."""

    existing_mentors: list[dict[str, Any]] = field(default_factory=list)
    disclosed: Callable[[int], bool] = lambda n: True
    """Whether the ``n``-th person screened (from 1) disclosed abuse."""
    answers: dict[str, Answer] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    screened: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        org, role, _ = token.split(" ")
        body = json.loads(request.content) if request.content else None
        call = Call(request.method, request.url.path, org, role, token, body)
        self.calls.append(call)
        for pattern, answer in self.answers.items():
            if re.fullmatch(pattern, f"{call.method} {call.path}"):
                status, content = answer(call)
                return httpx.Response(status, json=content)
        status, content = self.answer(call)
        return httpx.Response(status, json=content)

    def answer(self, call: Call) -> tuple[int, dict[str, Any]]:
        n = len(self.calls)
        route = f"{call.method} {call.path}"
        if route == "GET /v1/mentors":
            return 200, {"mentors": [m for m in self.existing_mentors if m["org"] == call.org]}
        if route == "POST /v1/mentors":
            return 201, {"id": f"mnt_{n}", **(call.body or {})}
        if route == "POST /v1/screenings":
            self.screened += 1
            return 201, {"subject_id": f"sub_{n:032x}",
                         "disclosed": self.disclosed(self.screened)}
        if route == "POST /v1/referrals":
            return 201, {"id": f"ref_{n}"}
        if call.path.endswith("/match"):
            return 200, {"status": "matched", "match_id": f"mat_{n}"}
        return 201, {}


def traffic_for(apis: FakeApis, **pace: Any) -> tuple[demo.Traffic, io.StringIO]:
    """The demo's traffic against ``apis`` on a fake clock that moves only when it sleeps."""
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    client = httpx.Client(transport=httpx.MockTransport(apis.handle))
    settings = PlatformSettings()
    api = demo.Api(client, settings, demo.Tokens(Minter(), 3600, now=lambda: clock[0]))
    err = io.StringIO()
    options = {"step_gap": (1.0, 1.0), "waitlist_poll": 3.0, "not_screened_share": 0.0,
               "referred_share": 1.0, **pace}
    traffic = demo.Traffic(api, settings, random.Random(21), demo.Pace(**options),
                           now=lambda: clock[0], today=lambda: TODAY, sleep=sleep,
                           out=io.StringIO(), err=err)
    return traffic, err


def run_ticks(traffic: demo.Traffic, ticks: int) -> None:
    for _ in range(ticks):
        traffic.tick()


def journey_calls(apis: FakeApis) -> list[Call]:
    """The calls after the mentors were set up, other than screening's."""
    return [c for c in apis.calls if not c.path.startswith((
        "/v1/enquiries", "/v1/screenings", "/v1/mentors", "/v1/team-training"))]


def test_a_journey_goes_from_consent_to_the_ending_with_the_right_role_at_each_step() -> None:
    apis = FakeApis(disclosed=lambda n: n == 1)  # only the first person screened disclosed
    traffic, err = traffic_for(apis)
    run_ticks(traffic, 30)

    calls = journey_calls(apis)
    [journey_org] = {c.org for c in calls if c.role == "mentor-coordinator"}
    assert journey_org in ("partner-a", "partner-b")
    steps = [(re.sub(r"/(sub|ref|mat)_[0-9a-f]+", "/{id}", c.path), c.org, c.role)
             for c in calls]
    coordinator = (journey_org, "mentor-coordinator")
    sessions = traffic.tally.sessions
    exit_score = [("/v1/outcomes", *coordinator)] if traffic.tally.intake_and_exit else []
    harms = [s for s in steps if s[0] == "/v1/adverse-events"]
    assert harms == [("/v1/adverse-events", *coordinator)] * traffic.tally.adverse_events
    assert [s for s in steps if s[0] != "/v1/adverse-events"] == [
        ("/v1/offers", "trust", "clinician"),
        ("/v1/subjects/{id}/consents", "trust", "clinician"),
        ("/v1/subjects/{id}/consents", "trust", "clinician"),
        ("/v1/referrals", "trust", "clinician"),
        ("/v1/referrals/{id}/match", *coordinator),
        ("/v1/outcomes", *coordinator),
        *[("/v1/sessions", *coordinator)] * sessions,
        *exit_score,
        ("/v1/matches/{id}/end", *coordinator),
        *[("/v1/outcomes", *coordinator)] * traffic.tally.follow_ups,
    ]
    assert traffic.tally.offers == 1
    assert calls[0].body and calls[0].body["outcome"] == "accepted"
    calls = calls[1:]  # from the consents on
    assert sessions >= 1
    assert [c.body["purpose"] for c in calls[:2] if c.body] == ["peer-mentoring",
                                                                "partner-sharing"]
    assert calls[1].body and calls[1].body["recipients"] == [journey_org]
    assert calls[2].body and calls[2].body["to_org"] == journey_org
    follow_ups = ["3-months", "6-months", "12-months"][:traffic.tally.follow_ups]
    assert [c.body["timepoint"] for c in calls if c.path == "/v1/outcomes" and c.body] == [
        "intake", "exit"][:1 + len(exit_score)] + follow_ups
    assert traffic.journeys == [] and err.getvalue() == ""


def test_every_screening_follows_an_enquiry_due_for_the_same_person_and_some_are_never_asked(
        ) -> None:
    apis = FakeApis(disclosed=lambda n: False)
    traffic, _ = traffic_for(apis, not_screened_share=0.3)
    run_ticks(traffic, 60)

    screening_calls = [c for c in apis.calls if c.path in ("/v1/enquiries/due",
                                                           "/v1/screenings")]
    screenings = [i for i, c in enumerate(screening_calls) if c.path == "/v1/screenings"]
    assert len(screenings) == 60
    for i in screenings:
        due, asked = screening_calls[i - 1].body, screening_calls[i].body
        assert due and asked and due["nhs_number"] == asked["nhs_number"]
        assert (due["org"], due["team"]) == (asked["org"], asked["team"])
        assert due["due_on"] <= asked["asked_on"]
    never_asked = len(screening_calls) - 2 * len(screenings)
    assert 5 <= never_asked <= 35
    assert {c.role for c in screening_calls} == {"clinician"}
    assert traffic.tally.due == len(screening_calls) - len(screenings)


def test_mentors_are_registered_once_per_partner_and_existing_ones_supervised_not_repeated(
        ) -> None:
    stale = (TODAY - timedelta(days=20)).isoformat()
    fresh = TODAY.isoformat()
    existing = [{"id": f"mnt_old{i}", "org": "partner-a", "display_name": f"{demo.MENTOR_NAME} "
                 f"{i} (synthetic)", "gender": "female", "languages": ["en"], "borough": "camden",
                 "modes": ["phone"], "status": "active", "last_supervision_on": day}
                for i, day in enumerate((stale, fresh, fresh))]
    someone_elses = {**existing[0], "id": "mnt_real", "display_name": "Sam"}
    gone = {**existing[0], "id": "mnt_left", "status": "left"}
    apis = FakeApis(existing_mentors=[*existing, someone_elses, gone], disclosed=lambda n: False)
    traffic, _ = traffic_for(apis)
    run_ticks(traffic, 5)

    registered_at = [c.org for c in apis.calls if (c.method, c.path) == ("POST", "/v1/mentors")]
    supervised = [c.path for c in apis.calls if c.path.endswith("/supervision")]
    assert registered_at.count("partner-a") == demo.MENTORS_PER_PARTNER - 3
    assert registered_at.count("partner-b") == demo.MENTORS_PER_PARTNER
    assert supervised == ["/v1/mentors/mnt_old0/supervision"]
    assert {m.mentor_id for m in traffic.mentors["partner-a"]} >= {"mnt_old0", "mnt_old1"}
    assert not {"mnt_real", "mnt_left"} & {m.mentor_id for m in traffic.mentors["partner-a"]}
    assert all(c.role == "mentor-coordinator" for c in apis.calls if "mentors" in c.path)


def test_a_waitlisted_referral_is_followed_until_the_waitlist_matches_it() -> None:
    polls: list[int] = []

    def referral(call: Call) -> tuple[int, dict[str, Any]]:
        polls.append(1)
        if len(polls) < 3:
            return 200, {"status": "waitlisted", "match_id": None}
        return 200, {"status": "matched", "match_id": "mat_later"}

    apis = FakeApis(disclosed=lambda n: n == 1, answers={
        r"POST /v1/referrals/ref_\w+/match": lambda c: (200, {
            "status": "waitlisted", "unmet_constraints": ["capacity: no room"]}),
        r"GET /v1/referrals/ref_\w+": referral})
    traffic, _ = traffic_for(apis)
    run_ticks(traffic, 40)

    assert len(polls) == 3
    assert (traffic.tally.waitlisted, traffic.tally.matched) == (1, 1)
    recorded = [c for c in apis.calls if c.path in ("/v1/outcomes", "/v1/sessions")]
    assert recorded and all(c.body and c.body["match_id"] == "mat_later" for c in recorded)
    assert traffic.tally.planned_endings + traffic.tally.unplanned_endings == 1


def test_failures_are_reported_without_personal_data_and_the_traffic_goes_on() -> None:
    def refuse_screening(call: Call) -> tuple[int, dict[str, Any]]:
        number = (call.body or {}).get("nhs_number", "")
        return 500, {"error": "internal", "message": f"could not store {number}"}

    def down(call: Call) -> tuple[int, dict[str, Any]]:
        raise httpx.ConnectError("refused")

    apis = FakeApis(answers={r"POST /v1/screenings": refuse_screening,
                             r"POST /v1/enquiries/due": down})
    traffic, err = traffic_for(apis)
    run_ticks(traffic, 10)

    lines = err.getvalue().splitlines()
    assert lines.count("demo: screening failed: HTTP 500 internal") == 10
    assert lines.count("demo: enquiry-due failed: not answering") == 10
    assert not re.search(r"999\d{7}|sub_", err.getvalue())
    assert traffic.tally.failures == 20 and traffic.tally.screened == 0


def test_a_refused_step_ends_that_journey_and_a_failing_one_is_tried_again() -> None:
    attempts: list[int] = []

    def flaky_session(call: Call) -> tuple[int, dict[str, Any]]:
        attempts.append(1)
        return (503, {"error": "consent-unavailable"}) if len(attempts) == 1 else (201, {})

    refused = {"count": 0}

    def refuse_second_referral(call: Call) -> tuple[int, dict[str, Any]]:
        refused["count"] += 1
        if refused["count"] == 2:
            return 409, {"error": "sharing-required", "message": "no"}
        return 201, {"id": f"ref_{refused['count']}"}

    apis = FakeApis(disclosed=lambda n: n in (1, 2), answers={
        r"POST /v1/sessions": flaky_session, r"POST /v1/referrals": refuse_second_referral})
    traffic, err = traffic_for(apis)
    run_ticks(traffic, 40)

    assert "demo: referral failed: HTTP 409 sharing-required" in err.getvalue()
    assert "demo: session failed: HTTP 503 consent-unavailable" in err.getvalue()
    assert [c.path for c in apis.calls if c.path.endswith("/match")] == [
        "/v1/referrals/ref_1/match"]
    assert traffic.tally.sessions == len(attempts) - 1 >= 1
    assert traffic.tally.planned_endings + traffic.tally.unplanned_endings == 1
    assert traffic.journeys == []


def test_a_refused_token_is_replaced_before_the_next_call() -> None:
    refused: list[str] = []

    def refuse_first(call: Call) -> tuple[int, dict[str, Any]]:
        refused.append(call.token)
        return (401, {"error": "not-authenticated"}) if len(refused) == 1 else (201, {})

    apis = FakeApis(disclosed=lambda n: False, answers={r"POST /v1/enquiries/due": refuse_first})
    traffic, err = traffic_for(apis)
    run_ticks(traffic, 3)

    assert "demo: enquiry-due failed: HTTP 401 not-authenticated" in err.getvalue()
    tokens = [c.token for c in apis.calls if c.role == "clinician"]
    assert tokens[0] == refused[0] and len(tokens) == 6
    assert set(tokens[1:]) == {tokens[1]} != {tokens[0]}


@pytest.mark.parametrize("seed", SEEDS[:50])
def test_the_studys_mentoring_records_the_demo_sends_are_valid(seed: int) -> None:
    rng = random.Random(seed)
    session = LogSession.model_validate(demo.fake_session(rng, "mat_x", TODAY, "phone"))
    assert set(session.components) <= set(DEFAULT_COMPONENTS)
    assert bool(session.components) is (session.attendance == "attended")
    RecordAdverseEvent.model_validate(demo.fake_adverse_event(rng, "mat_x", TODAY))
    offer = RecordOffer.model_validate(demo.fake_offer(rng, "trust", TODAY, seed % 2 == 0))
    assert (offer.outcome == "accepted") is (seed % 2 == 0)
    ending = EndMatch.model_validate(demo.fake_ending(rng, planned=seed % 3 != 0))
    assert ending.feedback is None or ending.planned


def test_planned_endings_are_followed_up_at_3_6_and_12_months_in_order() -> None:
    follow_ups = []
    for seed in range(12):
        apis = FakeApis(disclosed=lambda n: n <= 3)
        traffic, err = traffic_for(apis)
        traffic.rng = random.Random(seed)
        run_ticks(traffic, 40)
        by_match: dict[str, list[str]] = {}
        for c in apis.calls:
            if c.path == "/v1/outcomes" and c.body and c.body["timepoint"].endswith("months"):
                by_match.setdefault(c.body["match_id"], []).append(c.body["timepoint"])
        for timepoints in by_match.values():
            assert timepoints == ["3-months", "6-months", "12-months"][:len(timepoints)]
        follow_ups.append(sum(map(len, by_match.values())))
        assert err.getvalue() == ""
        assert traffic.tally.follow_ups == follow_ups[-1]
    assert max(follow_ups) > 0
