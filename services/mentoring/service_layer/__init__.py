"""Mentoring use cases."""
