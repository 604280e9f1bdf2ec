"""Mentoring service: mentors, referrals, matching, sessions, safeguarding, outcomes, endings."""
