"""The topic registry: every topic Peerlink uses, who owns it and how it is configured.

Topics are created explicitly (``peerlink topics create``) so that partition counts match
across co-partitioned topics and state topics are compacted, never time-retained.

Sensitive topics (``partner.<org>.inbound``, ``deadletter.<service>``) may hold personal data
as a partner sent it, before any service sealed it: they keep records for a short, configured
time only (``PEERLINK_SENSITIVE_TOPIC_RETENTION_DAYS``), and ``create_topics`` shortens the
retention of ones that already exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

SERVICES: tuple[str, ...] = ("consent", "screening", "mentoring", "reporting")
"""Every Peerlink service, in cascade order."""

PUBLISHING_SERVICES: tuple[str, ...] = ("consent", "screening", "mentoring")
"""Services that publish business events on ``<service>.events``."""

CASCADE_ACKS = "cascade.acks"
AUDIT_HEADS = "audit.heads"
"""The consent audit chain's heads: kept for ever (never compacted, which would keep only the
newest head per key), so every head ever published still pins the chain."""
DEFAULT_SENSITIVE_RETENTION_MS = 7 * 24 * 3600 * 1000
"""Seven days, the default of ``PEERLINK_SENSITIVE_TOPIC_RETENTION_DAYS``."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, the service that owns it, and its configuration."""

    name: str
    owner: str
    description: str
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)
    sensitive: bool = False
    """Holds personal data as it arrived: its ``retention.ms`` is kept short and aligned."""

    def kafka_configs(self) -> dict[str, str]:
        """The topic-level configuration to create it with."""
        configs = dict(self.configs)
        configs["cleanup.policy"] = "compact" if self.compacted else "delete"
        if not self.compacted:
            configs.setdefault("retention.ms", "-1")
        return configs


def events_topic(service: str) -> str:
    """The business-event topic a service publishes on."""
    return f"{service}.events"


def partner_inbound_topic(org: str) -> str:
    """The topic a partner organisation's systems write CloudEvents to."""
    return f"partner.{org}.inbound"


def deadletter_topic(service: str) -> str:
    """The dead-letter topic of one service's consumers."""
    return f"deadletter.{service}"


def sensitive_topic(name: str, owner: str, description: str, retention_ms: int) -> TopicSpec:
    """A topic that may hold personal data in clear, kept ``retention_ms`` only."""
    return TopicSpec(name, owner, description, configs={"retention.ms": str(retention_ms)},
                     sensitive=True)


def registry(organisations: Iterable[str], *,
             sensitive_retention_ms: int = DEFAULT_SENSITIVE_RETENTION_MS) -> list[TopicSpec]:
    """Every topic for a deployment with the given partner organisations.

    Business topics keep every event (retention -1): they are the log the reporting stream
    is rebuilt from, and erasure works by shredding keys, not by deleting records. Partner
    inbound and dead-letter topics keep ``sensitive_retention_ms`` only.
    """
    specs = [
        TopicSpec(events_topic(s), s, f"business events published by {s}")
        for s in PUBLISHING_SERVICES
    ]
    specs.append(TopicSpec(CASCADE_ACKS, "consent",
                           "withdrawal-applied and erasure-applied from every service"))
    specs.append(TopicSpec(AUDIT_HEADS, "consent",
                           "the consent audit chain's head, published while it moves"))
    specs += [
        sensitive_topic(partner_inbound_topic(org), org, f"CloudEvents sent by {org}'s systems",
                        sensitive_retention_ms)
        for org in organisations
    ]
    specs += [
        sensitive_topic(deadletter_topic(s), s, f"records {s} could not apply (sealed), with "
                        "the reason", sensitive_retention_ms)
        for s in SERVICES
    ]
    return specs
