"""Who is in each figure: people, not events; the funnel by episode under the receiving
organisation; coverage over people due; SWEMWBS paired within an episode."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pytest

from services.reporting.domain.contributions import consent_contributions, contributions_of
from services.reporting.domain.people import (
    COVERAGE,
    ENGAGEMENT,
    FEASIBILITY,
    OFFERS,
    PREVALENCE,
    WITHIN,
    Fact,
    Remembered,
    Standing,
    events_of,
    months_in,
    person_reference,
    rows_now,
    standings,
)
from shared.events.consent import ConsentGranted
from shared.events.envelope import EventPayload
from shared.events.mentoring import (
    AdverseEventRecorded,
    FollowUpRecorded,
    MatchMade,
    MenteeFeedbackGiven,
    MenteeReferred,
    MentoringEnded,
    MentoringOffered,
    MentoringPreferences,
    OutcomeRecorded,
    SessionComponentsRecorded,
    SessionLogged,
)
from shared.events.screening import (
    EnquiryAcceptability,
    EnquiryDue,
    EnquiryNotAsked,
    ScreeningCompleted,
    ScreeningDeclined,
)

NOVEMBER = {"2026-11"}
TODAY = date(2026, 11, 30)


class Log:
    """Events about people, stored as the read model stores them."""

    def __init__(self) -> None:
        self.facts: list[Fact] = []
        self._seq = itertools.count(1)

    def add(self, subject: str, payload: EventPayload) -> None:
        event_key = f"event-{next(self._seq)}"
        for c in contributions_of(payload):
            self.facts.append(Fact(next(self._seq), subject, event_key, c.measure, c.value,
                                   c.occurred_on, {"org": c.org, "team": c.team,
                                                   "borough": c.borough, "gender": c.gender,
                                                   "age_band": c.age_band,
                                                   "referred_by": c.referred_by},
                                   c.episode, c.match_id))

    def table(self, table: str, months: set[str] | None = NOVEMBER) -> dict[str, Standing]:
        return {s.person: s for s in standings(events_of(self.facts), table, months)}


def screening(day: date = date(2026, 11, 2), *, current: bool = False, team: str = "north",
              private: bool = True) -> ScreeningCompleted:
    return ScreeningCompleted(
        screening_id="s", org="trust", team=team, borough="camden", gender="female",
        age_band="25-34", asked_on=day, asked_by_role="nurse", training_level=2,
        private=private, hark_score=int(current), current_abuse=current, past_abuse="no",
        disclosed=current)


def referral(referral_id: str, day: date, to_org: str = "partner-a") -> MenteeReferred:
    return MenteeReferred(referral_id=referral_id, referred_by_org="trust", to_org=to_org,
                          referred_on=day, preferences=MentoringPreferences(),
                          borough="camden", gender="female", age_band="25-34")


def match(match_id: str, referral_id: str, day: date, org: str = "partner-a") -> MatchMade:
    return MatchMade(match_id=match_id, referral_id=referral_id, mentor_id="mentor", org=org,
                     matched_on=day, days_from_referral=7, waitlisted=False)


def swemwbs(match_id: str, timepoint: str, metric: float, day: date) -> OutcomeRecorded:
    return OutcomeRecorded(outcome_id=f"o-{match_id}-{timepoint}", match_id=match_id,
                           org="partner-a", recorded_on=day, timepoint=timepoint,
                           instrument="SWEMWBS", items=(3,) * 7, raw_score=21,
                           metric_score=metric)


def session(match_id: str, attendance: str, day: date) -> SessionLogged:
    return SessionLogged(session_id=f"s-{match_id}-{day}", match_id=match_id, org="partner-a",
                         held_on=day, duration_minutes=50, mode="phone", attendance=attendance,
                         safeguarding_concern=False)


@pytest.mark.parametrize(
    ("given_period", "given_today", "expected"),
    [
        pytest.param("last-12-months", date(2026, 3, 15),
                     {"2025-04", "2025-05", "2025-06", "2025-07", "2025-08", "2025-09",
                      "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"},
                     id="spans-a-year-end"),
        pytest.param("last-12-months", date(2025, 12, 31),
                     {f"2025-{m:02d}" for m in range(1, 13)}, id="december"),
        pytest.param("last-12-months", date(2026, 1, 1),
                     {"2026-01", *(f"2025-{m:02d}" for m in range(2, 13))}, id="january"),
        pytest.param("2025-07", date(2026, 3, 15), {"2025-07"}, id="one-month"),
    ],
)
def test_months_in(given_period: str, given_today: date, expected: set[str]) -> None:
    assert months_in(given_period, given_today) == expected


def test_one_person_screened_nine_times_is_one_person() -> None:
    log = Log()
    for day in range(1, 10):
        log.add("p1", screening(date(2026, 11, day), current=True))
    people = log.table(PREVALENCE)
    assert len(people) == 1
    [only] = people.values()
    assert only.measures["screened"] == 1
    assert only.measures["current_abuse"] == 1


def test_prevalence_uses_each_persons_most_recent_screening_in_the_period() -> None:
    log = Log()
    log.add("p1", screening(date(2026, 11, 20), current=False, team="south"))
    log.add("p1", screening(date(2026, 11, 3), current=True, team="north"))  # arrives later
    log.add("p1", screening(date(2026, 12, 1), current=True, team="east"))  # another month
    [november] = log.table(PREVALENCE).values()
    assert (november.dims["team"], november.measures["current_abuse"]) == ("south", 0)
    [year] = log.table(PREVALENCE, None).values()
    assert (year.dims["team"], year.dims["month"], year.measures["current_abuse"]) == (
        "east", "2026-12", 1)


def test_a_redelivered_event_changes_no_figure_but_is_activity() -> None:
    once, twice = Log(), Log()
    once.add("p1", screening(current=True))
    twice.add("p1", screening(current=True))
    twice.add("p1", screening(current=True))
    [a], [b] = once.table(PREVALENCE).values(), twice.table(PREVALENCE).values()
    assert a.measures == b.measures
    assert a.activity != b.activity


def test_coverage_counts_screenings_of_people_due_over_people_due() -> None:
    log = Log()
    for person in ("due-and-screened", "due-only"):
        log.add(person, EnquiryDue(org="trust", team="north", due_on=date(2026, 11, 1)))
    log.add("due-and-screened", screening(private=False))
    log.add("screened-not-due", screening())
    log.add("declined", ScreeningDeclined(
        screening_id="d", org="trust", team="north", borough="camden", gender="male",
        age_band="35-44", asked_on=date(2026, 11, 4), asked_by_role="nurse",
        training_level=2, private=True))
    people = log.table(COVERAGE)
    totals = {m: sum(s.measures[m] for s in people.values())
              for m in ("due", "screened", "declined", "asked_in_private")}
    assert totals == {"due": 2, "screened": 1, "declined": 1, "asked_in_private": 0}
    # the due record has no borough: the person's screening fills it in
    due_and_screened = next(s for s in people.values() if s.measures["screened"])
    assert due_and_screened.dims["borough"] == "camden"


def journey(log: Log, person: str, referral_id: str, *, intake: float | None = None,
            exit_: float | None = None, planned: bool | None = None) -> None:
    log.add(person, referral(referral_id, date(2026, 11, 2)))
    log.add(person, match(f"m-{referral_id}", referral_id, date(2026, 11, 9)))
    log.add(person, session(f"m-{referral_id}", "attended", date(2026, 11, 16)))
    if intake is not None:
        log.add(person, swemwbs(f"m-{referral_id}", "intake", intake, date(2026, 11, 9)))
    if exit_ is not None:
        log.add(person, swemwbs(f"m-{referral_id}", "exit", exit_, date(2026, 11, 28)))
    if planned is not None:
        log.add(person, MentoringEnded(match_id=f"m-{referral_id}", org="partner-a",
                                       ended_on=date(2026, 11, 29), planned=planned))


def test_the_funnel_counts_a_journey_under_the_receiving_organisation() -> None:
    log = Log()
    journey(log, "p1", "r1", planned=True)
    [person] = log.table(ENGAGEMENT).values()
    assert person.dims["org"] == "partner-a"
    assert person.dims["referred_by"] == "trust"
    stages = [person.measures[m] for m in ("referred", "matched", "attended_session",
                                           "planned_endings")]
    assert stages == [1, 1, 1, 1]
    assert person.measures["active_mentees"] == 0


def test_the_funnel_is_a_cohort_of_the_referral_month() -> None:
    log = Log()
    log.add("p1", referral("r1", date(2026, 10, 30)))
    log.add("p1", match("m1", "r1", date(2026, 11, 2)))
    assert log.table(ENGAGEMENT) == {}  # matched in November, referred in October
    [october] = log.table(ENGAGEMENT, {"2026-10"}).values()
    assert (october.measures["referred"], october.measures["matched"]) == (1, 1)


def test_swemwbs_change_pairs_intake_and_exit_within_one_episode() -> None:
    log = Log()
    journey(log, "p1", "r1", intake=20.0, exit_=24.0, planned=True)
    log.add("p1", referral("r2", date(2026, 11, 20)))  # a second episode, intake only
    log.add("p1", match("m-r2", "r2", date(2026, 11, 21)))
    log.add("p1", swemwbs("m-r2", "intake", 14.0, date(2026, 11, 21)))
    [person] = log.table(ENGAGEMENT).values()
    assert "swemwbs_change" not in person.measures  # the first exit is not the second's
    first_only = Log()
    journey(first_only, "p1", "r1", intake=20.0, exit_=24.0, planned=True)
    [person] = first_only.table(ENGAGEMENT).values()
    assert person.measures["swemwbs_change"] == 400


@pytest.mark.parametrize(("attendance", "measure"), [("attended", "attended_session"),
                                                      ("did-not-attend", "missed_session")])
def test_sessions_count_people_who_had_one(attendance: str, measure: str) -> None:
    log = Log()
    log.add("p1", referral("r1", date(2026, 11, 2)))
    log.add("p1", match("m1", "r1", date(2026, 11, 3)))
    for day in (4, 11, 18):
        log.add("p1", session("m1", attendance, date(2026, 11, day)))
    [person] = log.table(ENGAGEMENT).values()
    assert person.measures[measure] == 1


def test_an_unplanned_ending_is_not_planned_and_ends_activity() -> None:
    log = Log()
    journey(log, "p1", "r1", planned=False)
    [person] = log.table(ENGAGEMENT).values()
    measures: dict[str, Any] = person.measures
    assert (measures["planned_endings"], measures["unplanned_endings"],
            measures["active_mentees"]) == (0, 1, 0)


def test_a_release_works_out_again_only_people_whose_events_changed() -> None:
    log = Log()
    log.add("alice", screening())
    log.add("bob", screening())
    remembered = Remembered()
    key = (PREVALENCE, "org", "trust", "2026-11")

    first = {s.person: s for s in rows_now(log.facts, TODAY, remembered)[key]}
    log.add("bob", screening(date(2026, 11, 9), current=True))
    second = {s.person: s for s in rows_now(log.facts, TODAY, remembered)[key]}

    alice, bob = person_reference("alice"), person_reference("bob")
    assert second[alice] is first[alice]  # the same events: the same standing, not worked out
    assert second[bob] is not first[bob]
    assert (first[bob].measures["current_abuse"], second[bob].measures["current_abuse"]) == (0, 1)


def test_what_a_release_did_not_use_is_forgotten() -> None:
    """A person who left the read model (withdrew) is not kept past the next release."""
    log = Log()
    log.add("alice", screening())
    remembered = Remembered()
    key = (PREVALENCE, "org", "trust", "2026-11")
    [before] = rows_now(log.facts, TODAY, remembered)[key]

    assert rows_now([], TODAY, remembered) == {}
    [after] = rows_now(log.facts, TODAY, remembered)[key]

    assert after == before and after is not before  # worked out afresh


def test_what_is_forgotten_is_worked_out_afresh() -> None:
    log = Log()
    log.add("alice", screening())
    remembered = Remembered()
    key = (PREVALENCE, "org", "trust", "2026-11")
    [before] = rows_now(log.facts, TODAY, remembered)[key]

    remembered.forget()
    [after] = rows_now(log.facts, TODAY, remembered)[key]

    assert after == before and after is not before


def enquiry_fields(day: date) -> dict[str, Any]:
    return {"screening_id": "e", "org": "trust", "team": "north", "borough": "camden",
            "gender": "female", "age_band": "25-34", "asked_on": day,
            "asked_by_role": "nurse", "training_level": 2, "private": False}


def not_asked(day: date, reason: str) -> EnquiryNotAsked:
    return EnquiryNotAsked(**enquiry_fields(day), reason=reason)


def acceptability(day: date, acceptable: str, comfort: int | None) -> EnquiryAcceptability:
    fields = {k: v for k, v in enquiry_fields(day).items()
              if k not in ("asked_by_role", "training_level", "private")}
    return EnquiryAcceptability(**fields, acceptable=acceptable, comfort=comfort)


def test_not_asked_counts_each_person_once_by_their_most_recent_enquiry() -> None:
    log = Log()
    log.add("tried-twice", not_asked(date(2026, 11, 3), "no-private-space"))
    log.add("tried-twice", not_asked(date(2026, 11, 10), "no-time"))
    log.add("asked-later", not_asked(date(2026, 11, 4), "not-alone"))
    log.add("asked-later", screening(date(2026, 11, 20)))
    people = log.table(COVERAGE)
    tried = people[person_reference("tried-twice")].measures
    assert (tried["not_asked"], tried["not_asked_no_time"],
            tried["not_asked_no_private_space"]) == (1, 1, 0)
    later = people[person_reference("asked-later")].measures
    assert (later["not_asked"], later["not_asked_not_alone"]) == (0, 0)


def test_acceptability_is_each_persons_most_recent_answer() -> None:
    log = Log()
    log.add("p1", screening(date(2026, 11, 2)))
    log.add("p1", acceptability(date(2026, 11, 2), "unsure", 2))
    log.add("p1", acceptability(date(2026, 11, 16), "yes", 5))
    log.add("p2", acceptability(date(2026, 11, 5), "no", None))
    people = log.table(COVERAGE)
    one, two = (people[person_reference(p)].measures for p in ("p1", "p2"))
    assert {m: one[m] for m in ("acceptability_answered", "found_acceptable",
                                "acceptable_unsure", "comfort_rated", "comfortable")} == {
        "acceptability_answered": 1, "found_acceptable": 1, "acceptable_unsure": 0,
        "comfort_rated": 1, "comfortable": 1}
    assert (two["not_acceptable"], two["comfort_rated"], two["comfortable"]) == (1, 0, 0)
    # nobody answered in December: the November answers are not carried into it
    assert log.table(COVERAGE, {"2026-12"}) == {}


def offer(offer_id: str, outcome: str, reason: str | None = None,
          day: date = date(2026, 11, 6)) -> MentoringOffered:
    return MentoringOffered(offer_id=offer_id, org="trust", team="north", gender="male",
                            age_band="35-44", offered_on=day, outcome=outcome,
                            decline_reason=reason)


def test_an_offer_counts_once_and_never_as_a_declined_enquiry() -> None:
    log = Log()
    log.add("off_1", offer("off_1", "declined", "has-other-support"))
    log.add("off_2", offer("off_2", "accepted"))
    offers = log.table(OFFERS)
    assert sorted(s.measures["offer_declined"] for s in offers.values()) == [0, 1]
    assert sum(s.measures["offer_declined_has_other_support"] for s in offers.values()) == 1
    assert log.table(COVERAGE) == {}  # an offer declined is not an enquiry declined
    assert log.table(FEASIBILITY) == {}  # nor anyone in the funnel


def full_journey(log: Log, person: str) -> None:
    log.add(person, EnquiryDue(org="trust", team="north", due_on=date(2026, 11, 1)))
    log.add(person, screening(date(2026, 11, 2), current=True))
    journey(log, person, f"r-{person}", planned=True)
    log.add(person, FollowUpRecorded(outcome_id=f"o3-{person}", match_id=f"m-r-{person}",
                                     org="partner-a", recorded_on=date(2027, 2, 28),
                                     timepoint="3-months", instrument="SWEMWBS",
                                     items=(3,) * 7, raw_score=21, metric_score=19.25))


def test_the_feasibility_funnel_follows_one_person_from_due_to_follow_up_in_their_entry_month(
        ) -> None:
    log = Log()
    full_journey(log, "p1")
    log.add("p2", not_asked(date(2026, 11, 9), "no-time"))
    [one] = [s for s in log.table(FEASIBILITY).values() if s.person == person_reference("p1")]
    assert {m: one.measures[m] for m in ("due", "asked", "disclosed", "referred", "matched",
                                         "attended_session", "planned_ending",
                                         "followed_up_3_months", "followed_up_6_months")} == {
        "due": 1, "asked": 1, "disclosed": 1, "referred": 1, "matched": 1,
        "attended_session": 1, "planned_ending": 1, "followed_up_3_months": 1,
        "followed_up_6_months": 0}
    assert one.dims["month"] == "2026-11" and one.dims["org"] == "trust"
    lost = log.table(FEASIBILITY)[person_reference("p2")].measures
    assert (lost["due"], lost["asked"], lost["not_asked"]) == (0, 0, 1)
    # the follow-up in February does not move them out of November, their entry month
    assert log.table(FEASIBILITY, {"2027-02"}) == {}


def test_consent_to_peer_mentoring_is_the_funnels_consented_stage() -> None:
    log = Log()
    full_journey(log, "p1")
    full_journey(log, "p2")
    granted = ConsentGranted(consent_id="c1", purpose="peer-mentoring", method="verbal",
                             org="trust")
    for c in consent_contributions(granted, date(2026, 11, 3)):
        log.facts.append(Fact(10_000, "p1", "consent-event", c.measure, c.value,
                              c.occurred_on, {"org": c.org}))
    sharing = ConsentGranted(consent_id="c2", purpose="partner-sharing", method="verbal",
                             org="trust", recipients=("partner-a",))
    assert consent_contributions(sharing, date(2026, 11, 3)) == []

    funnel = log.table(FEASIBILITY)
    assert funnel[person_reference("p1")].measures["consented"] == 1
    assert funnel[person_reference("p2")].measures["consented"] == 0
    assert funnel[person_reference("p1")].dims["org"] == "trust"
    # a consent alone is no entry to the programme, and no other table counts it
    alone = Log()
    alone.facts.append(Fact(1, "p3", "consent-event", "consented", 1, date(2026, 11, 3),
                            {"org": "trust"}))
    assert all(alone.table(t) == {} for t in (FEASIBILITY, COVERAGE, PREVALENCE, ENGAGEMENT))


def test_an_episode_counts_its_components_feedback_and_adverse_events() -> None:
    log = Log()
    journey(log, "p1", "r1", planned=True)
    log.add("p1", SessionComponentsRecorded(session_id="s1", match_id="m-r1", org="partner-a",
                                            held_on=date(2026, 11, 16),
                                            components=("safety-planning",)))
    log.add("p1", SessionComponentsRecorded(session_id="s2", match_id="m-r1", org="partner-a",
                                            held_on=date(2026, 11, 23),
                                            components=("safety-planning", "practical-help")))
    log.add("p1", MenteeFeedbackGiven(match_id="m-r1", org="partner-a",
                                      given_on=date(2026, 11, 29), helped=5, made_worse="no"))
    log.add("p1", AdverseEventRecorded(adverse_event_id="a1", match_id="m-r1", org="partner-a",
                                       occurred_on=date(2026, 11, 20), kind="distress",
                                       serious=False, relatedness="unrelated"))
    [episode] = log.table(ENGAGEMENT).values()
    assert {m: episode.measures[m] for m in (
        "components_recorded", "component_safety_planning", "component_practical_help",
        "feedback_given", "helped_a_lot", "made_worse", "adverse_event",
        "serious_adverse_event", "related_adverse_event")} == {
        "components_recorded": 1, "component_safety_planning": 1,
        "component_practical_help": 1, "feedback_given": 1, "helped_a_lot": 1,
        "made_worse": 0, "adverse_event": 1, "serious_adverse_event": 0,
        "related_adverse_event": 0}
    assert "component_emotional_support" not in episode.measures


def test_components_nest_in_the_people_with_components_recorded() -> None:
    nesting = WITHIN[ENGAGEMENT]
    assert nesting["component_anything_configured"] == "components_recorded"
    assert "component_anything_configured" in nesting
    assert nesting["components_recorded"] == "attended_session"
    assert "swemwbs_intake" not in nesting
