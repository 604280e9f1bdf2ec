"""Reporting adapters: the read model's tables and migrations."""
