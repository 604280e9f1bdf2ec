"""Screening service: routine enquiry (HARK, lifetime abuse), DASH risk checklist, MARAC."""
