"""Peerlink's four services: consent, screening, mentoring and reporting."""
