"""Reporting service: de-identified prevalence, coverage and engagement with disclosure control."""
