"""Consent adapters: database tables, the data-key store and migrations."""
