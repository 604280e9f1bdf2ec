"""Consent service: subjects, data keys, consents per purpose, withdrawals and erasure."""
