"""``peerlink consent``: key-store administration (rotating the master key, re-applying
erasures from the log after a restore)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shared.settings import platform_settings


def cmd_consent_keys(args: argparse.Namespace) -> int:
    """Rotate the master key, or re-apply erasures from the log after a restore."""
    import base64

    from services.consent.bootstrap import ConsentAdapters, master_key
    from services.consent.service_layer import key_admin
    from shared.events.envelope import CloudEvent
    from shared.kafka.client import client_options
    from shared.kafka.deadletters import read_records
    from shared.kafka.topics import events_topic

    settings = platform_settings()
    service = ConsentAdapters(settings)
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


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``peerlink consent rotate-master-key`` and ``reapply-shredding``."""
    consent = commands.add_parser("consent", help="consent key-store administration")
    consent_sub = consent.add_subparsers(dest="action", required=True)
    rotate = consent_sub.add_parser("rotate-master-key",
                                    help="re-wrap every data key under a new master key")
    rotate.add_argument("--new-key-file", required=True, help="32 random bytes, base64")
    rotate.set_defaults(func=cmd_consent_keys)
    consent_sub.add_parser(
        "reapply-shredding",
        help="after restoring a backup, destroy again every key the log says was shredded",
    ).set_defaults(func=cmd_consent_keys)
