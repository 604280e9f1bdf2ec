"""Reporting use cases: applying contributions and publishing releases."""
