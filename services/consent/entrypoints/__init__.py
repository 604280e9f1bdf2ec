"""Consent entrypoints: the HTTP API and the stream worker."""
