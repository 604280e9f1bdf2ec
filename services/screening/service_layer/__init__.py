"""Screening use cases."""
