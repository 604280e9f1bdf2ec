"""The audit trail's hash chain: any altered, removed or reordered entry is found."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.consent.domain.audit import GENESIS, entry_hash, verify_chain

Entry = tuple[int, str, str, dict[str, Any]]
Chain = tuple[list[Entry], tuple[int, str] | None]
SUBJECT = "sub_" + "a" * 32


def content(seq: int) -> dict[str, Any]:
    """What the service hashes for one entry."""
    return {"seq": seq, "at": f"2026-03-02T09:00:{seq:02d}+00:00", "actor": f"user-{seq}",
            "actor_org": "trust", "action": "consent-granted", "subject_id": SUBJECT,
            "detail": f'{{"purpose": "evaluation", "n": {seq}}}'}


def build(n: int) -> Chain:
    """An intact chain of ``n`` entries and its head."""
    entries: list[Entry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        body = content(seq)
        digest = entry_hash(prev, body)
        entries.append((seq, prev, digest, body))
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
        entries[seq - 1] = (s, prev, entry_hash(prev, forged), forged)
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

    check = verify_chain(entries, head)

    assert check.valid
    assert check.entries == 5
    assert check.first_broken_seq is None
    assert check.problem is None


def test_an_empty_chain_with_no_head_is_valid() -> None:
    check = verify_chain([], None)
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

    check = verify_chain(entries, head)

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
    forged.append((5, forged[-1][2], entry_hash(forged[-1][2], forged_fifth), forged_fifth))

    check = verify_chain(forged, head)

    assert not check.valid
    assert verify_chain(entries, head).valid


def test_an_empty_chain_whose_head_says_more_is_invalid() -> None:
    _entries, head = build(3)

    check = verify_chain([], head)

    assert not check.valid
    assert check.first_broken_seq == 1
