"""Contracts and plumbing shared by every Peerlink service: events, Kafka, identity, auth, HTTP."""
