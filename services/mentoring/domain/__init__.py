"""Mentoring rules, free of I/O."""
