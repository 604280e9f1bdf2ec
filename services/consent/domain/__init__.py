"""Consent rules, free of I/O."""
