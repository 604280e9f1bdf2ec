"""The audit trail's keyed hash chain: any altered, removed or reordered entry is found, a chain
recomputed without the key (or under another) fails, and published heads pin the chain even
against someone who recomputes it with the key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.consent.domain.audit import (
    GENESIS,
    PublishedHead,
    entry_hash,
    unkeyed_hash,
    verify_chain,
)

Entry = tuple[int, str, str, dict[str, Any]]
Chain = tuple[list[Entry], tuple[int, str] | None]
SUBJECT = "sub_" + "a" * 32
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def content(seq: int) -> dict[str, Any]:
    """What the service hashes for one entry."""
    return {"seq": seq, "at": f"2026-03-02T09:00:{seq:02d}+00:00", "actor": f"user-{seq}",
            "actor_org": "trust", "action": "consent-granted", "subject_id": SUBJECT,
            "detail": f'{{"purpose": "evaluation", "n": {seq}}}'}


def build(n: int, key: bytes = KEY, start: int = 1,
          body: Callable[[int], dict[str, Any]] = content) -> Chain:
    """An intact chain of ``n`` entries (under ``key``) and its head."""
    entries: list[Entry] = []
    prev = GENESIS
    for seq in range(start, start + n):
        body_ = body(seq)
        digest = entry_hash(key, prev, body_) if key else unkeyed_hash(prev, body_)
        entries.append((seq, prev, digest, body_))
        prev = digest
    return entries, ((n, prev) if n else None)


def altered(seq: int, field: str, value: Any) -> Callable[[Chain], Chain]:
    def tamper(chain: Chain) -> Chain:
        entries, head = chain
        s, prev, digest, body = entries[seq - 1]
        entries[seq - 1] = (s, prev, digest, {**body, field: value})
        return entries, head
    return tamper


def stored_hash(seq: int) -> Callable[[Chain], Chain]:
    def tamper(chain: Chain) -> Chain:
        entries, head = chain
        s, prev, _digest, body = entries[seq - 1]
        entries[seq - 1] = (s, prev, "f" * 64, body)
        return entries, head
    return tamper


def stored_prev_hash(seq: int) -> Callable[[Chain], Chain]:
    def tamper(chain: Chain) -> Chain:
        entries, head = chain
        s, _prev, digest, body = entries[seq - 1]
        entries[seq - 1] = (s, "e" * 64, digest, body)
        return entries, head
    return tamper


def rehashed(seq: int) -> Callable[[Chain], Chain]:
    """Alter one entry and recompute its own hash: the next entry no longer links to it."""
    def tamper(chain: Chain) -> Chain:
        entries, head = chain
        s, prev, _digest, body = entries[seq - 1]
        forged = {**body, "action": "consent-withdrawn"}
        entries[seq - 1] = (s, prev, entry_hash(KEY, prev, forged), forged)
        return entries, head
    return tamper


def removed(*seqs: int) -> Callable[[Chain], Chain]:
    def tamper(chain: Chain) -> Chain:
        entries, head = chain
        return [e for e in entries if e[0] not in seqs], head
    return tamper


def swapped(a: int, b: int) -> Callable[[Chain], Chain]:
    def tamper(chain: Chain) -> Chain:
        entries, head = chain
        entries[a - 1], entries[b - 1] = entries[b - 1], entries[a - 1]
        return entries, head
    return tamper


def test_an_intact_chain_is_valid() -> None:
    entries, head = build(5)

    check = verify_chain(KEY, entries, head)

    assert check.valid
    assert check.entries == 5
    assert check.first_broken_seq is None
    assert check.problem is None


def test_an_empty_chain_with_no_head_is_valid() -> None:
    check = verify_chain(KEY, [], None)
    assert check.valid
    assert check.entries == 0
    assert check.first_broken_seq is None


def test_each_entry_links_to_the_previous_hash() -> None:
    entries, head = build(3)
    assert entries[0][1] == GENESIS
    assert [e[1] for e in entries[1:]] == [e[2] for e in entries[:-1]]
    assert head == (3, entries[-1][2])


@pytest.mark.parametrize(
    ("tamper", "first_broken_seq", "problem"),
    [
        *[pytest.param(altered(3, field, value), 3, "altered", id=f"content-{field}")
          for field, value in [("at", "2026-03-02T09:00:00+00:00"), ("actor", "someone-else"),
                               ("actor_org", "partner-a"), ("action", "consent-withdrawn"),
                               ("subject_id", "sub_" + "b" * 32), ("subject_id", None),
                               ("detail", '{"purpose": "peer-mentoring", "n": 3}'),
                               ("seq", 30)]],
        pytest.param(altered(1, "actor", "x"), 1, "altered", id="content-of-the-first"),
        pytest.param(altered(5, "detail", "{}"), 5, "altered", id="content-of-the-last"),
        pytest.param(stored_hash(2), 2, "altered", id="stored-hash"),
        pytest.param(stored_hash(5), 5, "altered", id="stored-hash-of-the-last"),
        pytest.param(stored_prev_hash(4), 4, "altered", id="stored-prev-hash"),
        pytest.param(rehashed(2), 3, "altered", id="altered-and-rehashed-breaks-the-next"),
        pytest.param(removed(3), 3, "missing", id="middle-entry-removed"),
        pytest.param(removed(1), 1, "missing", id="first-entry-removed"),
        pytest.param(removed(2, 3), 2, "missing", id="two-middle-entries-removed"),
        pytest.param(removed(5), 5, "removed", id="last-entry-removed"),
        pytest.param(removed(4, 5), 4, "removed", id="last-two-entries-removed"),
        pytest.param(removed(1, 2, 3, 4, 5), 1, "removed", id="every-entry-removed"),
        pytest.param(swapped(2, 3), 2, None, id="two-entries-reordered"),
        pytest.param(swapped(1, 5), 1, None, id="first-and-last-reordered"),
    ],
)
def test_tampering_is_detected_at_the_first_broken_entry(
        tamper: Callable[[Chain], Chain], first_broken_seq: int, problem: str | None) -> None:
    entries, head = tamper(build(5))

    check = verify_chain(KEY, entries, head)

    assert not check.valid
    assert check.first_broken_seq == first_broken_seq
    assert check.entries == first_broken_seq - 1
    if problem is not None:
        assert problem in (check.problem or "")


def test_a_head_that_no_longer_matches_is_detected() -> None:
    """A forger who rewrites the rest of the chain still cannot match the recorded head."""
    entries, head = build(5)
    forged, _ = build(4)
    forged_fifth = {**content(5), "detail": "{}"}
    forged.append((5, forged[-1][2], entry_hash(KEY, forged[-1][2], forged_fifth), forged_fifth))

    check = verify_chain(KEY, forged, head)

    assert not check.valid
    assert verify_chain(KEY, entries, head).valid


def test_an_empty_chain_whose_head_says_more_is_invalid() -> None:
    _entries, head = build(3)

    check = verify_chain(KEY, [], head)

    assert not check.valid
    assert check.first_broken_seq == 1


# --- the key -------------------------------------------------------------------------------


def test_the_hash_depends_on_the_key() -> None:
    body = content(1)
    assert entry_hash(KEY, GENESIS, body) != entry_hash(OTHER_KEY, GENESIS, body)
    assert entry_hash(KEY, GENESIS, body) != unkeyed_hash(GENESIS, body)
    assert entry_hash(KEY, GENESIS, body) == entry_hash(KEY, GENESIS, dict(body))
    with pytest.raises(ValueError, match="key"):
        entry_hash(b"", GENESIS, body)


def test_a_chain_checked_with_the_wrong_key_fails_at_the_first_entry() -> None:
    entries, head = build(5)

    check = verify_chain(OTHER_KEY, entries, head)

    assert not check.valid
    assert check.first_broken_seq == 1
    assert check.entries == 0
    assert "altered" in (check.problem or "")


def test_a_chain_recomputed_without_the_key_fails_and_says_it_is_unkeyed() -> None:
    """Someone with only the database recomputes a consistent plain SHA-256 chain."""
    entries, head = build(5, key=b"")

    check = verify_chain(KEY, entries, head)

    assert not check.valid
    assert check.first_broken_seq == 1
    assert "unkeyed SHA-256" in (check.problem or "")


@pytest.mark.parametrize("field", ["seq", "at", "actor", "actor_org", "action", "subject_id",
                                   "detail"])
def test_any_altered_field_fails_when_the_chain_is_recomputed_under_another_key(
        field: str) -> None:
    def forged(seq: int) -> dict[str, Any]:
        body = content(seq)
        return {**body, field: "forged"} if seq == 3 else body

    entries, head = build(5)
    rewritten, rewritten_head = build(5, key=OTHER_KEY, body=forged)

    assert verify_chain(KEY, entries, head).valid
    check = verify_chain(KEY, rewritten, rewritten_head)
    assert not check.valid
    assert check.first_broken_seq == 1  # nothing under a foreign key verifies


# --- published heads --------------------------------------------------------------------


def heads_of(entries: list[Entry], *seqs: int) -> list[PublishedHead]:
    """The heads the worker would have published after entries ``seqs``."""
    return [PublishedHead(seq, entries[seq - 1][2], T0 + timedelta(minutes=i))
            for i, seq in enumerate(seqs)]


def test_an_intact_chain_agrees_with_every_published_head() -> None:
    entries, head = build(8)
    published = heads_of(entries, 2, 5, 8)

    check = verify_chain(KEY, entries, head, published)

    assert check.valid
    assert check.entries == 8
    assert check.heads_checked == 3
    assert check.newest_head == published[-1]


def test_heads_still_agree_when_entries_were_appended_after_them() -> None:
    entries, head = build(8)
    check = verify_chain(KEY, entries, head, heads_of(entries, 3))
    assert check.valid
    assert check.heads_checked == 1


def test_a_chain_recomputed_with_the_key_after_removals_disagrees_with_the_heads() -> None:
    """The strongest adversary: database access and the key. They delete entries 4 to 6 and
    recompute a consistent chain; the heads published before still pin what was there."""
    entries, _head = build(10)
    published = heads_of(entries, 3, 7, 10)
    survivors = [content(s) for s in (1, 2, 3, 7, 8, 9, 10)]
    forged: list[Entry] = []
    prev = GENESIS
    for seq, body in enumerate(survivors, start=1):
        body = {**body, "seq": seq}
        digest = entry_hash(KEY, prev, body)
        forged.append((seq, prev, digest, body))
        prev = digest

    assert verify_chain(KEY, forged, (7, prev)).valid  # consistent on its own
    check = verify_chain(KEY, forged, (7, prev), published)

    assert not check.valid
    assert check.first_broken_seq == 4  # entries 1-3 are still vouched for by the first head
    assert check.entries == 3
    assert "disagrees with the head published at 2026-03-02T09:01:00+00:00" in (
        check.problem or "")
    assert check.heads_checked == 3
    assert check.newest_head == published[-1]


def test_a_head_naming_an_entry_the_database_no_longer_has_is_reported() -> None:
    entries, _head = build(10)
    published = heads_of(entries, 10)
    truncated, truncated_head = build(6)

    check = verify_chain(KEY, truncated, truncated_head, published)

    assert not check.valid
    assert check.first_broken_seq == 1
    assert "has no entry 10" in (check.problem or "")


def test_the_earlier_of_a_chain_break_and_a_head_disagreement_is_reported() -> None:
    entries, head = build(8)
    published = heads_of(entries, 2, 6)
    tampered = list(entries)
    tampered[6] = (7, entries[6][1], "f" * 64, entries[6][3])  # chain breaks at 7

    chain_first = verify_chain(KEY, tampered, head, published)
    assert chain_first.first_broken_seq == 7
    assert "altered" in (chain_first.problem or "")

    wrong = [*published[:1], PublishedHead(6, "e" * 64, T0)]
    heads_first = verify_chain(KEY, tampered, head, wrong)
    assert heads_first.first_broken_seq == 3
    assert "disagrees" in (heads_first.problem or "")
