"""Screening rules, free of I/O."""
