"""Consent use cases: each takes a unit of work and writes state and events together."""
