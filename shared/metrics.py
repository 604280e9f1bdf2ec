"""Prometheus metrics shared by every service process (names prefixed ``peerlink_``).

Labels carry only service names, routes, event types, topics and reasons: never a person.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "peerlink_http_requests_total", "HTTP requests handled",
    ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "peerlink_http_request_duration_seconds", "HTTP request latency",
    ["service", "method", "route"])
OUTBOX_PENDING = Gauge(
    "peerlink_outbox_pending_events", "Outbox events not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "peerlink_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished event",
    ["service"])
EVENTS_PUBLISHED = Counter(
    "peerlink_events_published_total", "Events published from the outbox", ["service", "topic"])
OUTBOX_REPUBLISHED = Counter(
    "peerlink_outbox_republished_total",
    "Outbox events marked for publishing again because the broker no longer held them",
    ["service", "topic"])
EVENTS_APPLIED = Counter(
    "peerlink_events_applied_total", "Events applied by a consumer", ["service", "event_type"])
EVENTS_DUPLICATE = Counter(
    "peerlink_events_duplicate_total", "Redelivered events skipped by the inbox", ["service"])
BATCHES_SPLIT = Counter(
    "peerlink_batches_split_total",
    "Batches a consumer applied one record at a time because the batch failed", ["service"])
DEADLETTERS = Counter(
    "peerlink_deadletters_total", "Records sent to the dead-letter topic", ["service", "reason"])
CONSENT_STALLED = Gauge(
    "peerlink_consent_events_stalled", "1 while a consent event cannot be applied", ["service"])
LAST_APPLIED = Gauge(
    "peerlink_consumer_last_applied_timestamp_seconds",
    "When a consumer last finished a record", ["service", "topic"])
WITHDRAWALS_OVERDUE = Gauge(
    "peerlink_withdrawals_overdue", "Withdrawals not acknowledged by every service in time")
WITHDRAWALS_PENDING = Gauge(
    "peerlink_withdrawals_pending", "Withdrawals waiting for acknowledgements")
WITHDRAWAL_COMPLETION = Histogram(
    "peerlink_withdrawal_completion_seconds",
    "From a withdrawal's request to its last required acknowledgement",
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 86400))
ERASURE_REQUESTS_AWAITING = Gauge(
    "peerlink_erasure_requests_awaiting_decision",
    "Erasure requests waiting for the holding organisation's DPO to decide")
ERASURE_REQUESTS_OVERDUE = Gauge(
    "peerlink_erasure_requests_overdue",
    "Erasure requests past their one-month (or extended) deadline with no decision")
ACCESS_REQUESTS_OPEN = Gauge(
    "peerlink_subject_access_requests_open", "Subject access requests not yet answered")
ACCESS_REQUESTS_OVERDUE = Gauge(
    "peerlink_subject_access_requests_overdue",
    "Subject access requests past their one-month deadline and not answered")
REPORTING_RELEASES = Counter(
    "peerlink_reporting_releases_total", "Disclosure-controlled releases published")
REPORTING_LAST_RELEASE = Gauge(
    "peerlink_reporting_last_release_timestamp_seconds", "When the last release was published")
REPORTING_RELEASE_SECONDS = Histogram(
    "peerlink_reporting_release_duration_seconds",
    "Time to work out and store one release (or find it not needed)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60))

DEADLETTER_REASONS = ("validation", "rejected", "unexpected")


def initialise_worker_metrics(service: str) -> None:
    """Create the labelled series a worker always has, so they read 0 rather than missing."""
    for reason in DEADLETTER_REASONS:
        DEADLETTERS.labels(service, reason)
    OUTBOX_PENDING.labels(service)
    OUTBOX_OLDEST_AGE.labels(service)
    EVENTS_DUPLICATE.labels(service)
    BATCHES_SPLIT.labels(service)
    CONSENT_STALLED.labels(service).set(0)
