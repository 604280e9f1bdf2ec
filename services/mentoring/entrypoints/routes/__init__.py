"""The mentoring API's routers, one per resource; path parameters they share."""

from fastapi import Path

from shared.identity import SUBJECT_PATTERN

ID = Path(max_length=40)
SUBJECT_ID = Path(pattern=SUBJECT_PATTERN, description="a subject reference")
