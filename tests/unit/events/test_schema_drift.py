"""The checked-in JSON Schemas and AsyncAPI document match what the models generate."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.events import CATALOGUE
from shared.events.export import ASYNCAPI_PATH, SCHEMA_DIR, export_schemas, write_asyncapi

REGENERATE = "the event contract drifted: run `python -m shared.events.export` and commit"


def test_schemas_match_the_models(tmp_path: Path) -> None:
    generated = {path.name: path.read_bytes() for path in export_schemas(tmp_path)}
    checked_in = {path.name: path.read_bytes() for path in SCHEMA_DIR.glob("*.json")}

    assert sorted(checked_in) == sorted(generated), REGENERATE
    drifted = [name for name in generated if checked_in[name] != generated[name]]
    assert drifted == [], f"{REGENERATE} ({', '.join(drifted)})"


def test_asyncapi_matches_the_models(tmp_path: Path) -> None:
    generated = write_asyncapi(tmp_path / "asyncapi.yaml").read_bytes()
    assert ASYNCAPI_PATH.read_bytes() == generated, REGENERATE


def test_asyncapi_describes_every_topic_and_type() -> None:
    document = yaml.safe_load(ASYNCAPI_PATH.read_text())

    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {"consent.events", "screening.events", "mentoring.events",
                         "cascade.acks", "audit.heads", "partner.{org}.inbound",
                         "deadletter.{service}"}
    assert set(CATALOGUE) <= set(document["components"]["messages"])
    sent = {message["$ref"].rsplit("/", 1)[1]
            for operation in document["operations"].values()
            if operation["action"] == "send" for message in operation["messages"]}
    assert set(CATALOGUE) <= sent
    for event_type, model in CATALOGUE.items():
        payload = document["components"]["messages"][event_type]["payload"]["allOf"][1]
        assert payload["properties"]["data"] == {"$ref": f"./schemas/{event_type}.v1.json"}
        assert payload["properties"]["dataschema"] == {"const": model.dataschema()}
    heads = document["channels"]["auditHeads"]
    assert set(heads["messages"]) == {"audit-head-published"}
    assert "audit-head-published" not in document["channels"]["consentEvents"]["messages"]
    head = document["components"]["messages"]["audit-head-published"]
    assert "subject" not in head["payload"]["allOf"][1]["required"]
    assert "traits" not in head
