"""``peerlink sar export``: everything each service holds about a subject access request's
person, as one JSON bundle, and the request marked complete (a DPO's token)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from shared.settings import platform_settings

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


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``peerlink sar export``."""
    sar = commands.add_parser("sar", help="subject access requests (a DPO's token)")
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
