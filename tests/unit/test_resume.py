"""Where a resuming connection starts: the replay arithmetic, values in, values out."""

from __future__ import annotations

import pytest

from livespace.resume import Replay, Resync, resume


def test_replays_what_was_missed_up_to_the_rooms_head() -> None:
    plan = resume(3, delivered=10, head=10, oldest=1)
    assert plan == Replay(3, 10)
    assert plan.count == 7
    assert plan.to_json() == {"from_seq": 4, "to_seq": 10, "count": 7}


def test_at_head_replays_nothing() -> None:
    plan = resume(10, delivered=10, head=10, oldest=1)
    assert isinstance(plan, Replay)
    assert plan.to_json() == {"from_seq": 11, "to_seq": 10, "count": 0}


def test_a_since_ahead_of_a_lagging_room_is_served_live() -> None:
    # the client saw seq 12 (its ack, or another node) before this node's room did
    plan = resume(12, delivered=10, head=12, oldest=1)
    assert plan == Replay(12, 12) and plan.count == 0


def test_since_just_before_the_oldest_kept_event_still_replays() -> None:
    assert resume(4, delivered=9, head=9, oldest=5) == Replay(4, 9)


def test_an_empty_log_after_cleanup_is_exact_only_at_head() -> None:
    assert resume(9, delivered=9, head=9, oldest=10) == Replay(9, 9)
    assert resume(8, delivered=9, head=9, oldest=10) == Resync(10)


@pytest.mark.parametrize("since", [-1, -100, 13, 10**12])
def test_negative_or_above_head_requires_resync(since: int) -> None:
    assert resume(since, delivered=10, head=12, oldest=1) == Resync(1)


def test_older_than_retention_requires_resync() -> None:
    assert resume(3, delivered=10, head=10, oldest=5) == Resync(5)
    assert resume(0, delivered=10, head=10, oldest=2) == Resync(2)
    assert resume(0, delivered=10, head=10, oldest=1) == Replay(0, 10)


def test_another_epoch_requires_resync_whatever_since() -> None:
    for since in (0, 5, 10):
        assert resume(since, delivered=10, head=10, oldest=1, epoch="old",
                      current="new") == Resync(1)
    assert resume(5, delivered=10, head=10, oldest=1, epoch="new", current="new") == Replay(5, 10)
    assert resume(5, delivered=10, head=10, oldest=1, current="new") == Replay(5, 10)
