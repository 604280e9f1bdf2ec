"""The ``peerlink`` command: broker, topics, migrations, services, tokens, subject access
request exports and ``up``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from services.consent.entrypoints import commands as consent_commands
from services.consent.entrypoints import sar_export
from services.reporting.entrypoints import commands as reporting_commands
from shared.kafka.topics import SERVICES
from shared.settings import API_PORTS, platform_settings

SERVICE_COMMANDS = (consent_commands, reporting_commands, sar_export)
"""The services' own commands (each module's ``register`` adds them), in the help's order."""


def _entrypoint(service: str, kind: str) -> Any:
    return importlib.import_module(f"services.{service}.entrypoints.{kind}")


def cmd_broker(args: argparse.Namespace) -> int:
    """Run the local Tansu broker in the foreground."""
    from ops.broker import LocalBroker

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
    from ops.migrations import migrate

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


def cmd_up(args: argparse.Namespace) -> int:
    """Run the whole platform locally until Ctrl-C, restarting processes that die."""
    from ops.platform import LocalPlatform

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

    for commands in SERVICE_COMMANDS:
        commands.register(sub)

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
