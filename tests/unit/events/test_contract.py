"""The event contract: every catalogue type round-trips, and bad payloads are refused clearly."""

from __future__ import annotations

import json
import re
import types
from datetime import UTC, datetime
from typing import Any, Literal, Union, get_args, get_origin

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from shared.events import (
    CATALOGUE,
    CloudEvent,
    EncryptedBlock,
    EventPayload,
    UnknownEventType,
    parse_payload,
    payload_model,
    topic_for,
)
from shared.events.export import ENVELOPE_SCHEMA, SCHEMA_DIR, schema_filename
from shared.events.vocabulary import ServiceName
from shared.kafka.topics import SERVICES

SEALED = {"personal": {"key_id": "k1", "nonce": "bm9uY2U", "ciphertext": "Y2lwaGVy"}}
AT = "2025-03-04T10:00:00+00:00"
ENQUIRY = {"screening_id": "s1", "org": "trust", "team": "north-cmht", "borough": "Camden",
           "gender": "female", "age_band": "25-34", "asked_on": "2025-03-04",
           "asked_by_role": "nurse", "training_level": 2, "private": True, **SEALED}
ACK = {"service": "mentoring", "withdrawal_id": "w1", "purposes": ["peer-mentoring"],
       "applied_at": AT}

SAMPLES: dict[str, dict[str, Any]] = {
    "subject-registered": {"org": "trust", **SEALED},
    "relationship-established": {"org": "partner-a", "basis": "referral"},
    "consent-granted": {"consent_id": "c1", "purpose": "peer-mentoring", "method": "verbal",
                        "org": "trust", **SEALED},
    "consent-withdrawn": {"withdrawal_id": "w1", "purposes": ["peer-mentoring", "evaluation"],
                          "erasure": True, "method": "written", "org": "partner-a"},
    "erasure-requested": {"withdrawal_id": "w1", "purposes": ["evaluation"],
                          "method": "electronic", "org": "trust"},
    "withdrawal-completed": {"withdrawal_id": "w1", "purposes": ["evaluation"], "erasure": False,
                             "services": ["reporting"], "requested_at": AT,
                             "completed_at": AT},
    "withdrawal-overdue": {"withdrawal_id": "w1", "purposes": ["partner-sharing"],
                           "erasure": False, "pending_services": ["screening"],
                           "requested_at": AT, "deadline_at": AT},
    "subject-key-shredded": {"key_id": "k1", "withdrawal_id": "w1"},
    "safe-contact-updated": {"org": "partner-a", **SEALED},
    "audit-head-published": {"seq": 42, "hash": "ab" * 32, "at": AT},
    "enquiry-due": {"org": "trust", "team": "north-cmht", "due_on": "2025-03-01"},
    "screening-completed": {**ENQUIRY, "hark_score": 1, "current_abuse": True,
                            "past_abuse": "no", "disclosed": True,
                            "abuser_relationship": "ex-partner",
                            "affected_mental_health": "unsure"},
    "screening-declined": ENQUIRY,
    "screening-not-safe": {**ENQUIRY, "private": False},
    "enquiry-not-asked": {**ENQUIRY, "private": False, "reason": "no-private-space"},
    "enquiry-acceptability-recorded": {
        **{k: ENQUIRY[k] for k in ("screening_id", "org", "team", "borough", "gender",
                                   "age_band", "asked_on")},
        "acceptable": "yes", "comfort": 4},
    "team-training-recorded": {"org": "trust", "team": "north-cmht", "as_of": "2025-03-01",
                               "staff": 12, "trained": 9},
    "risk-assessed": {"assessment_id": "r1", "org": "trust", "gender": "male",
                      "assessed_on": "2025-03-05", "dash_score": 14,
                      "incidents_last_12_months": 1, "criteria_met": ["visible-high-risk"],
                      "marac_referral_required": True, **SEALED},
    "marac-referral-required": {"referral_id": "m1", "assessment_id": "r1", "org": "trust",
                                "raised_on": "2025-03-05", "criteria_met": ["repeat"]},
    "mentor-registered": {"mentor_id": "mt1", "org": "partner-a", "gender": "female",
                          "languages": ["en", "ur"], "borough": "Camden",
                          "modes": ["in-person", "video"], "capacity": 3,
                          "training_completed_on": "2024-11-01", "check_level": "enhanced",
                          "check_completed_on": "2024-10-01", "status": "active"},
    "mentor-status-changed": {"mentor_id": "mt1", "org": "partner-a",
                              "previous_status": "active", "status": "paused"},
    "mentee-referred": {"referral_id": "rf1", "referred_by_org": "trust",
                        "referred_on": "2025-03-06",
                        "preferences": {"mentor_gender": "female", "language": "en",
                                        "mode": "in-person", "borough": "Camden"},
                        "age_band": "35-44", **SEALED},
    "match-made": {"match_id": "mm1", "referral_id": "rf1", "mentor_id": "mt1",
                   "org": "partner-a", "matched_on": "2025-03-10", "days_from_referral": 4,
                   "waitlisted": False},
    "session-logged": {"session_id": "se1", "match_id": "mm1", "org": "partner-a",
                       "held_on": "2025-03-12", "duration_minutes": 50, "mode": "phone",
                       "attendance": "attended", "safeguarding_concern": True},
    "safeguarding-concern-raised": {"concern_id": "sc1", "match_id": "mm1",
                                    "session_id": "se1", "org": "partner-a",
                                    "raised_on": "2025-03-12", **SEALED},
    "session-components-recorded": {"session_id": "se1", "match_id": "mm1", "org": "partner-a",
                                    "held_on": "2025-05-01",
                                    "components": ["emotional-support", "safety-planning"]},
    "supervision-recorded": {"mentor_id": "mt1", "org": "partner-a", "held_on": "2025-05-02",
                             "covered": ["safeguarding"]},
    "mentee-feedback-given": {"match_id": "mm1", "org": "partner-a", "given_on": "2025-06-01",
                              "helped": 4, "made_worse": "no", **SEALED},
    "adverse-event-recorded": {"adverse_event_id": "ae1", "match_id": "mm1", "org": "partner-a",
                               "occurred_on": "2025-05-20", "kind": "distress",
                               "serious": False, "relatedness": "possibly-related", **SEALED},
    "mentoring-offered": {"offer_id": "of1", "org": "trust", "team": "north-cmht",
                          "gender": "male", "age_band": "35-44", "offered_on": "2025-04-01",
                          "outcome": "declined", "decline_reason": "has-other-support"},
    "outcome-recorded": {"outcome_id": "o1", "match_id": "mm1", "org": "partner-a",
                         "recorded_on": "2025-03-12", "timepoint": "intake",
                         "instrument": "SWEMWBS", "items": [3, 3, 3, 3, 3, 3, 3],
                         "raw_score": 21, "metric_score": 19.25},
    "follow-up-recorded": {"outcome_id": "o2", "match_id": "mm1", "org": "partner-a",
                           "recorded_on": "2025-09-12", "timepoint": "6-months",
                           "instrument": "SWEMWBS", "items": [4, 4, 4, 4, 4, 4, 4],
                           "raw_score": 28, "metric_score": 25.03},
    "mentoring-ended": {"match_id": "mm1", "org": "partner-a", "ended_on": "2025-06-01",
                        "planned": True, **SEALED},
    "withdrawal-applied": ACK,
    "erasure-applied": {**ACK, "retained_records": 1},
}

PERSONAL_NAME = re.compile(
    r"nhs|name|phone|email|address|postcode|birth|contact|notes|details|reason|narrative")


def _sample(event_type: str) -> EventPayload:
    return payload_model(event_type).model_validate(SAMPLES[event_type])


def _envelope(event_type: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(id="e1", source="test", type=event_type, subject="subj-1",
                      time=datetime(2025, 3, 4, tzinfo=UTC),
                      dataschema=payload_model(event_type).dataschema(), data=data)


def _options(annotation: Any) -> tuple[Any, ...]:
    union = get_origin(annotation) in (Union, types.UnionType)
    return get_args(annotation) if union else (annotation,)


def _coded(options: tuple[Any, ...]) -> bool:
    """Whether a field can only hold a code from a closed vocabulary (no free text)."""
    return all(option is type(None) or get_origin(option) is Literal for option in options)


def _clear_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every field outside an encrypted block that can hold more than a code from a closed
    vocabulary, nested models included."""
    names = []
    for name, info in model.model_fields.items():
        options = _options(info.annotation)
        if EncryptedBlock in options or _coded(options):
            continue
        names.append(prefix + name)
        for option in options:
            if isinstance(option, type) and issubclass(option, BaseModel):
                names += _clear_fields(option, f"{prefix}{name}.")
    return names


def test_every_catalogue_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(CATALOGUE)


def test_catalogue_keys_models_by_their_event_type() -> None:
    for event_type, model in CATALOGUE.items():
        assert model.event_type == event_type
        assert model.version == 1
        assert model.publisher in (*SERVICES, "any")
        assert model.dataschema() == f"urn:peerlink:schema:{event_type}:1"


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_payload_round_trips_through_the_envelope(event_type: str) -> None:
    payload = _sample(event_type)
    event = CloudEvent.wrap(payload, source="test", subject="subj-1")

    received = CloudEvent.from_bytes(event.to_bytes())

    assert received.type == event_type
    assert received.subject == "subj-1"
    assert parse_payload(received) == payload


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_checked_in_schemas_accept_the_sample(event_type: str) -> None:
    model = payload_model(event_type)
    event = CloudEvent.wrap(_sample(event_type), source="test", subject="subj-1")
    schema = json.loads((SCHEMA_DIR / schema_filename(model)).read_text())
    envelope = json.loads((SCHEMA_DIR / ENVELOPE_SCHEMA).read_text())

    jsonschema.validate(json.loads(event.to_bytes())["data"], schema)
    jsonschema.validate(json.loads(event.to_bytes()), envelope)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_extra_fields_are_refused(event_type: str) -> None:
    with pytest.raises(ValidationError, match="surprise"):
        parse_payload(_envelope(event_type, {**SAMPLES[event_type], "surprise": 1}))


def test_unknown_type_is_refused_by_name() -> None:
    with pytest.raises(UnknownEventType, match="'screening-imagined'"):
        parse_payload(CloudEvent(id="e1", source="test", type="screening-imagined",
                                 time=datetime.now(UTC)))


@pytest.mark.parametrize("dataschema", [
    "urn:peerlink:schema:enquiry-due:2",
    "urn:peerlink:schema:match-made:1",
    "https://example.org/enquiry-due.json",
])
def test_dataschema_that_names_no_known_version_is_refused(dataschema: str) -> None:
    event = _envelope("enquiry-due", SAMPLES["enquiry-due"]).model_copy(
        update={"dataschema": dataschema})
    with pytest.raises(UnknownEventType, match="enquiry-due"):
        parse_payload(event)


def test_envelope_without_dataschema_reads_as_version_1() -> None:
    event = _envelope("enquiry-due", SAMPLES["enquiry-due"]).model_copy(
        update={"dataschema": None})
    assert parse_payload(event) == _sample("enquiry-due")


@pytest.mark.parametrize(("event_type", "field", "value"), [
    ("consent-granted", "purpose", "marketing"),
    ("consent-granted", "method", "implied"),
    ("consent-withdrawn", "purposes", ["evaluation", "evaluation"]),
    ("consent-withdrawn", "purposes", []),
    ("consent-withdrawn", "recipients", ["partner-a", "partner-a"]),
    ("consent-granted", "recipients", ["Partner A"]),
    ("relationship-established", "basis", "curious"),
    ("screening-completed", "gender", "unknown"),
    ("screening-completed", "age_band", "16-17"),
    ("screening-completed", "training_level", 4),
    ("screening-completed", "past_abuse", "maybe"),
    ("screening-completed", "abuser_relationship", "neighbour"),
    ("screening-completed", "hark_score", 5),
    ("screening-completed", "org", "Partner A"),
    ("risk-assessed", "dash_score", 25),
    ("risk-assessed", "criteria_met", ["gut-feeling"]),
    ("mentor-registered", "status", "retired"),
    ("mentor-registered", "modes", ["carrier-pigeon"]),
    ("mentee-referred", "preferences", {"mentor_gender": "not-stated"}),
    ("session-logged", "attendance", "late"),
    ("session-logged", "duration_minutes", -1),
    ("outcome-recorded", "timepoint", "midway"),
    ("outcome-recorded", "timepoint", "3-months"),  # v1 keeps its own timepoints
    ("follow-up-recorded", "timepoint", "intake"),
    ("outcome-recorded", "instrument", "HITS"),
    ("outcome-recorded", "items", [3, 3, 3, 3, 3, 3, 6]),
    ("session-components-recorded", "components", ["Emotional Support"]),
    ("session-components-recorded", "components", []),
    ("mentee-feedback-given", "helped", 6),
    ("mentee-feedback-given", "helped", True),
    ("adverse-event-recorded", "relatedness", "maybe"),
    ("adverse-event-recorded", "kind", "sprained-ankle"),
    ("mentoring-offered", "outcome", "maybe"),
    ("withdrawal-applied", "service", "billing"),
    ("erasure-applied", "retained_records", -1),
    ("audit-head-published", "seq", 0),
    ("audit-head-published", "hash", "AB" * 32),
    ("audit-head-published", "at", "2025-03-04T10:00:00"),
])
def test_vocabulary_violation_names_the_field(event_type: str, field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        payload_model(event_type).model_validate({**SAMPLES[event_type], field: value})


@pytest.mark.parametrize(("event_type", "changes", "message"), [
    ("screening-completed", {"hark_score": 0}, "current_abuse"),
    ("screening-completed", {"hark_score": 0, "current_abuse": False}, "disclosed"),
    ("risk-assessed", {"dash_score": 13}, "visible-high-risk"),
    ("risk-assessed", {"marac_referral_required": False}, "marac_referral_required"),
    ("marac-referral-required", {"criteria_met": []}, "criteria_met"),
    ("outcome-recorded", {"instrument": "WEMWBS", "metric_score": None}, "14 items"),
    ("outcome-recorded", {"raw_score": 22}, "raw_score"),
    ("outcome-recorded", {"metric_score": None}, "metric_score"),
    ("mentoring-offered", {"outcome": "accepted"}, "decline_reason"),
    ("mentoring-offered", {"decline_reason": None}, "decline_reason"),
])
def test_inconsistent_scores_are_refused(event_type: str, changes: dict[str, Any],
                                         message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        payload_model(event_type).model_validate({**SAMPLES[event_type], **changes})


def test_only_a_closed_vocabulary_is_exempt_from_the_personal_name_check() -> None:
    class Coded(EventPayload):
        reason: Literal["no-time", "other"] | None = None

    class FreeText(EventPayload):
        reason: str | None = None

    assert _clear_fields(Coded) == []
    assert _clear_fields(FreeText) == ["reason"]


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_personal_data_travels_only_encrypted(event_type: str) -> None:
    model = payload_model(event_type)
    clear = [name for name in _clear_fields(model) if PERSONAL_NAME.search(name)]
    assert clear == [], f"{event_type} carries personal data in clear: {clear}"
    for info in model.model_fields.values():
        if EncryptedBlock in _options(info.annotation):
            assert not info.is_required()
            assert info.description and "sealed plaintext keys" in info.description


def test_clear_field_check_sees_nested_models() -> None:
    names = _clear_fields(payload_model("mentee-referred"))
    assert "preferences.language" in names
    assert "personal" not in names


def test_topics_follow_the_publisher() -> None:
    assert topic_for("subject-registered") == "consent.events"
    assert topic_for("screening-completed") == "screening.events"
    assert topic_for("session-logged") == "mentoring.events"
    assert topic_for("withdrawal-applied") == "cascade.acks"
    assert topic_for("erasure-applied") == "cascade.acks"
    assert topic_for("audit-head-published") == "audit.heads"
    with pytest.raises(UnknownEventType, match="'nothing'"):
        topic_for("nothing")


def test_service_vocabulary_matches_the_topic_registry() -> None:
    assert get_args(ServiceName) == SERVICES

