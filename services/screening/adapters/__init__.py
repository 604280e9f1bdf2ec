"""Screening adapters: tables and migrations."""
