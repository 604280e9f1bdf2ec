"""The ``peerlink`` command: broker, topics, migrations, services, tokens, subject access
request exports and ``up``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.kafka.topics import SERVICES
from shared.settings import API_PORTS, platform_settings


def _entrypoint(service: str, kind: str) -> Any:
    return importlib.import_module(f"services.{service}.entrypoints.{kind}")


def cmd_broker(args: argparse.Namespace) -> int:
    """Run the local Tansu broker in the foreground."""
    from shared.broker import LocalBroker

    broker = LocalBroker(port=args.port).start()
    print(f"Tansu broker on {broker.bootstrap} (memory storage: topics vanish when it stops)",
          flush=True)
    try:
        return broker.wait()
    except KeyboardInterrupt:
        broker.stop()
        return 0


def cmd_topics_create(_args: argparse.Namespace) -> int:
    """Create every topic that does not exist yet."""
    from shared.kafka.client import client_options
    from shared.kafka.producer import create_topics
    from shared.kafka.topics import registry

    settings = platform_settings()
    specs = registry(settings.organisations,
                     sensitive_retention_ms=settings.sensitive_topic_retention_ms())
    created = create_topics(settings.kafka_bootstrap, specs, settings.topic_partitions,
                            settings.topic_replication, **client_options(settings))
    print(f"{len(created)} topics created, {len(specs) - len(created)} already there")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate the named service databases (all by default)."""
    from shared.runtime import migrate

    settings = platform_settings()
    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        print(f"peerlink migrate: unknown service {', '.join(unknown)}", file=sys.stderr)
        return 2
    for service in args.services or SERVICES:
        migrate(service, settings.database_url(service))
        print(f"{service}: migrated")
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    """Serve one service's HTTP API."""
    import uvicorn

    from shared.logging import configure_logging

    settings = platform_settings()
    configure_logging(f"{args.service}-api", settings.log_level)
    app = _entrypoint(args.service, "api").create_app(settings)
    uvicorn.run(app, host=settings.http_host, port=args.port or settings.api_port(args.service),
                log_config=None, access_log=False, timeout_graceful_shutdown=5)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one service's stream worker."""
    from shared.logging import configure_logging

    settings = platform_settings()
    configure_logging(f"{args.service}-worker", settings.log_level)
    worker = _entrypoint(args.service, "worker").build_worker(settings)
    sys.argv = [sys.argv[0]]
    worker.run(settings.log_level)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Print a development token, and nothing else, on stdout (never in production)."""
    from shared.issuer import development_issuer

    settings = platform_settings()
    if settings.env == "production":
        print("peerlink token: refused with PEERLINK_ENV=production: people's tokens come "
              "from the organisation's identity provider", file=sys.stderr)
        return 2
    try:
        token = development_issuer(settings).mint(args.org, args.role)
    except ValueError as exc:
        print(f"peerlink token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def cmd_issuer(args: argparse.Namespace) -> int:
    """Serve the development token issuer (never in production)."""
    import uvicorn

    from shared.issuer import create_app
    from shared.logging import configure_logging

    settings = platform_settings()
    if settings.env == "production":
        print("peerlink issuer: refused with PEERLINK_ENV=production: use the organisation's "
              "identity provider (PEERLINK_TOKEN_URL, PEERLINK_JWT_JWKS_URL)", file=sys.stderr)
        return 2
    configure_logging("issuer", settings.log_level)
    uvicorn.run(create_app(settings), host=settings.http_host,
                port=args.port or settings.issuer_port(), log_config=None, access_log=False,
                timeout_graceful_shutdown=5)
    return 0


def cmd_deadletter(args: argparse.Namespace) -> int:
    """List dead letters (headers only), or replay chosen ones to their original topics."""
    from shared.kafka.client import client_options
    from shared.kafka.deadletters import read_dead_letters, replay
    from shared.kafka.producer import KafkaEventProducer
    from shared.kafka.topics import deadletter_topic
    from shared.runtime import deadletter_cipher

    settings = platform_settings()
    services = [args.service] if args.service else list(SERVICES)
    options = client_options(settings)
    letters = [letter for service in services
               for letter in read_dead_letters(settings.kafka_bootstrap,
                                               deadletter_topic(service), **options)]
    if args.action == "list":
        for letter in letters:
            print(letter.describe())
        print(f"{len(letters)} dead letters")
        return 0
    wanted = set(args.offset or [])
    chosen = [d for d in letters if args.all or f"{d.partition}:{d.offset}" in wanted]
    if not chosen:
        print("nothing chosen: give --offset PARTITION:OFFSET (repeatable) or --all",
              file=sys.stderr)
        return 2
    producer = KafkaEventProducer(settings.kafka_bootstrap, "peerlink-deadletter-replay",
                                  **options)
    try:
        print(f"{replay(producer, chosen, lambda s: deadletter_cipher(s, settings))} dead "
              "letters sent back to their topics")
    finally:
        producer.close()
    return 0


def cmd_consent_keys(args: argparse.Namespace) -> int:
    """Rotate the master key, or re-apply erasures from the log after a restore."""
    import base64

    from services.consent.bootstrap import ConsentService, master_key
    from services.consent.service_layer import key_admin
    from shared.events.envelope import CloudEvent
    from shared.kafka.client import client_options
    from shared.kafka.deadletters import read_records
    from shared.kafka.topics import events_topic

    settings = platform_settings()
    service = ConsentService(settings)
    if args.action == "rotate-master-key":
        new_key = base64.b64decode(Path(args.new_key_file).read_text().strip())
        with service.database.unit_of_work() as uow:
            done = key_admin.rotate_master_key(uow, master_key(settings), new_key)
        print(f"re-wrapped {done.data_keys} data keys and {done.lookups} NHS-number lookups; "
              "now point PEERLINK_MASTER_KEY_FILE at the new key and restart consent")
        return 0
    shredded = {
        event.subject for event in (
            CloudEvent.from_bytes(value)
            for value in read_records(settings.kafka_bootstrap, events_topic("consent"),
                                      **client_options(settings)))
        if event.type == "subject-key-shredded" and event.subject}
    with service.database.unit_of_work() as uow:
        revived = key_admin.reapply_shredding(uow, shredded)
    service.database.scrub(("data_keys", "subjects"))
    print(f"{len(shredded)} erasures in the log; {revived} keys had come back and are "
          "destroyed again")
    return 0


def cmd_reporting_rebuild(args: argparse.Namespace) -> int:
    """Replay the log into an empty reporting read model."""
    from services.reporting.entrypoints.rebuild import rebuild

    summary = rebuild(platform_settings(), args.database_url)
    skipped = ", ".join(f"{n} {r}" for r, n in sorted(summary.skipped.items())) or "none"
    print(f"replayed {summary.records} records, applied {summary.applied}, skipped {skipped}; "
          "a release with the rebuilt figures is published")
    return 0


SAR_HOLDERS = ("screening", "mentoring")
"""Services besides consent that hold personal data and export it for a subject access
request (``GET /v1/subjects/{id}/export``, the DPO's token)."""
REPORTING_HOLDS = ("reporting holds no personal data: only de-identified contributions to "
                   "figures, and figures published under disclosure control; nothing to export")


class SarExportFailed(Exception):
    """A service did not give its part of the bundle (the message names it and the status)."""


def _answer(response: Any, what: str) -> dict[str, Any]:
    if response.is_success:
        body: dict[str, Any] = response.json()
        return body
    try:
        error = response.json().get("error", "")
    except ValueError:
        error = ""
    raise SarExportFailed(f"{what}: HTTP {response.status_code} {error}".rstrip())


def sar_bundle(client: Any, request_id: str, urls: dict[str, str]) -> dict[str, Any]:
    """Everything each service holds about the person of subject access request
    ``request_id`` for the DPO's organisation, as one bundle (``client`` carries the DPO's
    token). A service answering 404 for the person holds nothing about them that the
    organisation may see. The request is marked complete once every part is in."""
    from shared.db import utcnow

    consent = urls["consent"]
    request = _answer(client.get(f"{consent}/v1/subject-access-requests/{request_id}"),
                      "consent: the request")
    subject_id = request["subject_id"]
    parts: dict[str, Any] = {"consent": _answer(
        client.get(f"{consent}/v1/subjects/{subject_id}/export"), "consent: the export")}
    for service in SAR_HOLDERS:
        response = client.get(f"{urls[service]}/v1/subjects/{subject_id}/export")
        parts[service] = {"service": service, "held": False,
                          "note": "answered 404: holds nothing about this person that your "
                                  "organisation may see"} \
            if response.status_code == 404 else _answer(response, f"{service}: the export")
    parts["reporting"] = {"service": "reporting", "held": False, "note": REPORTING_HOLDS}
    if request["status"] != "complete":
        request = _answer(client.post(
            f"{consent}/v1/subject-access-requests/{request_id}/complete"),
            "consent: marking the request complete")
    return {"subject_access_request": request, "subject_id": subject_id,
            "generated_at": utcnow().isoformat(), "services": parts}


def cmd_sar_export(args: argparse.Namespace) -> int:
    """Export everything held about a subject access request's person into one JSON file
    (readable by its owner only) and mark the request complete."""
    import json

    import httpx

    settings = platform_settings()
    urls = {"consent": args.consent_url or settings.consent_base_url(),
            **{service: getattr(args, f"{service}_url") or
               f"http://127.0.0.1:{settings.api_port(service)}" for service in SAR_HOLDERS}}
    with httpx.Client(headers={"Authorization": f"Bearer {args.token}"}, timeout=30) as client:
        try:
            bundle = sar_bundle(client, args.request, urls)
        except (SarExportFailed, httpx.HTTPError) as exc:
            print(f"peerlink sar export: {exc}", file=sys.stderr)
            return 1
    descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(bundle, out, indent=2, sort_keys=True)
    print(f"wrote {args.out}; the request is {bundle['subject_access_request']['status']}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Run the whole platform locally until Ctrl-C, restarting processes that die."""
    from shared.platform import LocalPlatform

    start_broker = "PEERLINK_KAFKA_BOOTSTRAP" not in os.environ
    settings, env = platform_settings(), dict(os.environ)
    if args.broker_port is not None:
        if not start_broker:
            print("peerlink up: --broker-port starts a local broker; PEERLINK_KAFKA_BOOTSTRAP "
                  "names a cluster instead", file=sys.stderr)
            return 2
        env["PEERLINK_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{args.broker_port}"
        settings = settings.model_copy(update={"kafka_bootstrap": env["PEERLINK_KAFKA_BOOTSTRAP"]})
    return LocalPlatform(settings, start_broker=start_broker, demo=args.demo, env=env).run()


def parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    root = argparse.ArgumentParser(prog="peerlink", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    broker = sub.add_parser("broker", help="run the local Tansu broker (Kafka protocol)")
    broker.add_argument("--port", type=int, default=9092)
    broker.set_defaults(func=cmd_broker)

    topics = sub.add_parser("topics", help="manage topics")
    topics_sub = topics.add_subparsers(dest="action", required=True)
    topics_sub.add_parser("create", help="create every topic").set_defaults(
        func=cmd_topics_create)

    migrate = sub.add_parser("migrate", help="migrate service databases")
    migrate.add_argument("services", nargs="*", metavar="SERVICE",
                         help=f"any of {', '.join(SERVICES)} (default: all)")
    migrate.set_defaults(func=cmd_migrate)

    api = sub.add_parser("api", help="run one service's HTTP API")
    api.add_argument("service", choices=SERVICES)
    api.add_argument("--port", type=int, default=None,
                     help=f"default: {API_PORTS} plus PEERLINK_PORT_OFFSET")
    api.set_defaults(func=cmd_api)
    worker = sub.add_parser("worker", help="run one service's stream worker")
    worker.add_argument("service", choices=SERVICES)
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="print a development bearer token (not in production)")
    token.add_argument("--org", required=True)
    token.add_argument("--role", required=True, action="append",
                       help="repeat for several roles")
    token.set_defaults(func=cmd_token)

    issuer = sub.add_parser("issuer", help="run the development token issuer (port 8100)")
    issuer.add_argument("--port", type=int, default=None,
                        help="default: 8100 plus PEERLINK_PORT_OFFSET")
    issuer.set_defaults(func=cmd_issuer)

    deadletter = sub.add_parser("deadletter", help="inspect and replay dead letters")
    deadletter_sub = deadletter.add_subparsers(dest="action", required=True)
    listing = deadletter_sub.add_parser("list", help="where each came from and why (no values)")
    again = deadletter_sub.add_parser("replay", help="send chosen ones back to their topic")
    for command in (listing, again):
        command.add_argument("--service", choices=SERVICES, default=None)
        command.set_defaults(func=cmd_deadletter)
    again.add_argument("--offset", action="append", metavar="PARTITION:OFFSET",
                       help="a dead letter's position on deadletter.<service> (repeatable)")
    again.add_argument("--all", action="store_true", help="replay every dead letter listed")

    consent = sub.add_parser("consent", help="consent key-store administration")
    consent_sub = consent.add_subparsers(dest="action", required=True)
    rotate = consent_sub.add_parser("rotate-master-key",
                                    help="re-wrap every data key under a new master key")
    rotate.add_argument("--new-key-file", required=True, help="32 random bytes, base64")
    rotate.set_defaults(func=cmd_consent_keys)
    consent_sub.add_parser(
        "reapply-shredding",
        help="after restoring a backup, destroy again every key the log says was shredded",
    ).set_defaults(func=cmd_consent_keys)

    reporting = sub.add_parser("reporting", help="reporting read model")
    reporting_sub = reporting.add_subparsers(dest="action", required=True)
    rebuild = reporting_sub.add_parser(
        "rebuild", help="replay the log from the beginning into an empty read model")
    rebuild.add_argument("--database-url", default=None,
                         help="rebuild into this database (default: the reporting database; "
                              "stop the reporting workers first)")
    rebuild.set_defaults(func=cmd_reporting_rebuild)

    sar = sub.add_parser("sar", help="subject access requests (a DPO's token)")
    sar_sub = sar.add_subparsers(dest="action", required=True)
    sar_export = sar_sub.add_parser(
        "export", help="write everything held about the request's person to one JSON file "
                       "and mark the request complete")
    sar_export.add_argument("--request", required=True, metavar="SAR_ID",
                            help="the subject access request (sar_...)")
    sar_export.add_argument("--token", required=True,
                            help="a bearer token of your organisation's DPO")
    sar_export.add_argument("--out", required=True, type=Path, help="the bundle to write")
    for service in ("consent", *SAR_HOLDERS):
        sar_export.add_argument(f"--{service}-url", default=None,
                                help=f"the {service} API (default: the local one)")
    sar_export.set_defaults(func=cmd_sar_export)

    up = sub.add_parser("up", help="run the whole platform locally")
    up.add_argument("--demo", action="store_true",
                    help="also send synthetic partner traffic (clearly fake people)")
    up.add_argument("--broker-port", type=int, default=None,
                    help="the local broker's port (default 9092), beside another Peerlink")
    up.set_defaults(func=cmd_up)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``peerlink`` console script."""
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
