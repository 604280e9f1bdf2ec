"""Mentoring adapters: tables and migrations."""
