"""Reporting rules: what each event contributes, disclosure control, intervals."""
