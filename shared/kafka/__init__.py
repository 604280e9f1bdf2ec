"""Kafka plumbing: topic registry, producer, outbox relay, inbox and dead letters."""
