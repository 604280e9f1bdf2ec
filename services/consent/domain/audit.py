"""The audit trail's hash chain: each entry's hash covers its content and the previous hash,
so altering or removing any entry breaks every hash after it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """SHA-256 over the previous hash and the entry's canonical JSON."""
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """The result of verifying the chain."""

    valid: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None


def verify_chain(entries: Iterable[tuple[int, str, str, Mapping[str, Any]]],
                 head: tuple[int, str] | None) -> ChainCheck:
    """Check ``(seq, prev_hash, hash, content)`` entries in order against the recorded head."""
    prev, expected_seq, count = GENESIS, 1, 0
    for seq, prev_hash, stored_hash, content in entries:
        if seq != expected_seq:
            return ChainCheck(False, count, expected_seq, "an entry is missing")
        if prev_hash != prev or entry_hash(prev, content) != stored_hash:
            return ChainCheck(False, count, seq, "an entry was altered")
        prev, expected_seq, count = stored_hash, seq + 1, count + 1
    head_seq, head_hash = head or (0, GENESIS)
    if (count, prev) != (head_seq, head_hash):
        return ChainCheck(False, count, count + 1, "entries after the last one were removed")
    return ChainCheck(True, count)
