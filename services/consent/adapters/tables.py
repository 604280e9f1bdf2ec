"""The consent service's tables."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, LargeBinary, String, Table

from shared.db import service_metadata

metadata = service_metadata()

subjects = Table(
    "subjects", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("nhs_lookup", String(64), unique=True, nullable=True,
           comment="HMAC of the NHS number; removed on erasure"),
    Column("nhs_number_sealed", LargeBinary, nullable=True,
           comment="the NHS number under the subject's data key"),
    Column("registered_by_org", String(40), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=True),
)

data_keys = Table(
    "data_keys", metadata,
    Column("subject_id", String(40), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True, comment="null once shredded"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("shredded_at", DateTime(timezone=True), nullable=True),
)
