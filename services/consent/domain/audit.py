"""The audit trail's keyed hash chain.

Each entry's hash is an HMAC-SHA256, under an audit key the database does not hold, of its
content and the previous hash: altering or removing any entry breaks every hash after it, and
someone with only the database cannot recompute a chain that verifies. The chain's head is
also published outside the database (Kafka); a head once published pins every entry up to it,
even against someone who holds the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


def _message(prev_hash: str, entry: Mapping[str, Any]) -> bytes:
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)
    return f"{prev_hash}|{canonical}".encode()


def entry_hash(key: bytes, prev_hash: str, entry: Mapping[str, Any]) -> str:
    """HMAC-SHA256 under ``key`` over the previous hash and the entry's canonical JSON."""
    if not key:
        raise ValueError("the audit chain needs a key")
    return hmac.new(key, _message(prev_hash, entry), hashlib.sha256).hexdigest()


def unkeyed_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """The former, unkeyed SHA-256 chain hash: only to name what verification found."""
    return hashlib.sha256(_message(prev_hash, entry)).hexdigest()


@dataclass(frozen=True)
class PublishedHead:
    """A chain head as published outside the database: the entry ``seq`` had ``hash``."""

    seq: int
    hash: str
    at: datetime


@dataclass(frozen=True)
class ChainCheck:
    """The result of verifying the chain (and the published heads, when given)."""

    valid: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None
    heads_checked: int = 0
    newest_head: PublishedHead | None = field(default=None)


Entry = tuple[int, str, str, Mapping[str, Any]]


def _recompute(key: bytes, entries: Iterable[Entry], head: tuple[int, str] | None,
               wanted: set[int]) -> tuple[ChainCheck, dict[int, str]]:
    """Check the chain itself; also collect the stored hashes at the ``wanted`` seqs."""
    prev, expected_seq, count = GENESIS, 1, 0
    stored: dict[int, str] = {}
    broken: ChainCheck | None = None
    for seq, prev_hash, stored_hash, content in entries:
        if seq in wanted:
            stored[seq] = stored_hash
        if broken is not None:
            continue  # only collecting what the published heads need
        if seq != expected_seq:
            broken = ChainCheck(False, count, expected_seq, "an entry is missing")
        elif prev_hash != prev or entry_hash(key, prev, content) != stored_hash:
            problem = "an entry was altered"
            if prev_hash == prev and unkeyed_hash(prev, content) == stored_hash:
                problem = ("an entry was altered: it carries an unkeyed SHA-256 hash, not the "
                           "keyed one (written without the audit key)")
            broken = ChainCheck(False, count, seq, problem)
        else:
            prev, expected_seq, count = stored_hash, seq + 1, count + 1
    if broken is not None:
        return broken, stored
    head_seq, head_hash = head or (0, GENESIS)
    if (count, prev) != (head_seq, head_hash):
        return ChainCheck(False, count, count + 1,
                          "entries after the last one were removed"), stored
    return ChainCheck(True, count), stored


def _against_heads(stored: Mapping[int, str], heads: list[PublishedHead]
                   ) -> tuple[int, str] | None:
    """The first seq the published heads cannot vouch for, and why; None when all agree."""
    vouched = 0
    for published in sorted(heads, key=lambda h: (h.seq, h.at)):
        found = stored.get(published.seq)
        if found == published.hash:
            vouched = max(vouched, published.seq)
            continue
        at = published.at.isoformat()
        if found is None:
            why = (f"the database has no entry {published.seq}, which the head published at "
                   f"{at} names")
        else:
            why = f"the database chain disagrees with the head published at {at}"
        return vouched + 1, (f"{why}: entries {vouched + 1} to {published.seq} were altered "
                             "or removed")
    return None


def verify_chain(key: bytes, entries: Iterable[Entry], head: tuple[int, str] | None,
                 published: Iterable[PublishedHead] = ()) -> ChainCheck:
    """Check ``(seq, prev_hash, hash, content)`` entries in order against the recorded head,
    then against every published head: the entry at each published seq must exist and carry
    the published hash. The earliest problem found is reported."""
    heads = list(published)
    chain, stored = _recompute(key, entries, head, {h.seq for h in heads})
    newest = max(heads, key=lambda h: (h.seq, h.at)) if heads else None
    disagreement = _against_heads(stored, heads)
    first_broken, problem = chain.first_broken_seq, chain.problem
    if disagreement is not None and (first_broken is None or disagreement[0] <= first_broken):
        first_broken, problem = disagreement
    if first_broken is None:
        return ChainCheck(True, chain.entries, heads_checked=len(heads), newest_head=newest)
    return ChainCheck(False, min(chain.entries, first_broken - 1), first_broken, problem,
                      heads_checked=len(heads), newest_head=newest)
