"""Rate limits and connection caps (pure: the clock is passed in)."""

from __future__ import annotations

import pytest

from livespace.limits import Abuse, Admission, KeyedBuckets, TokenBucket


def test_the_burst_is_one_seconds_worth() -> None:
    bucket = TokenBucket(rate=50, now=100.0)
    assert [bucket.take(100.0) for _ in range(50)] == [0.0] * 50
    wait = bucket.take(100.0)
    assert wait == pytest.approx(1 / 50)  # one token at 50/s


def test_tokens_come_back_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=10, now=0.0)
    for _ in range(10):
        bucket.take(0.0)
    assert bucket.take(0.05) == pytest.approx(0.05)  # half a token there, half to wait
    assert bucket.take(0.1) == 0.0
    assert bucket.take(100.0) == 0.0  # a long pause refills to the burst, not beyond
    assert sum(1 for _ in range(20) if bucket.take(100.0) == 0.0) == 9


def test_a_slow_rate_still_allows_one() -> None:
    bucket = TokenBucket(rate=0.5, now=0.0)
    assert bucket.burst == 1.0 and bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(2.0)


def test_a_steady_client_at_the_rate_is_never_refused() -> None:
    bucket = TokenBucket(rate=50, now=0.0)
    refused = [bucket.take(i / 50) for i in range(1, 5000)]
    assert not any(refused)


def test_abuse_is_sustained_past_the_limit_within_the_window() -> None:
    abuse = Abuse(limit=10, window=5.0)
    assert not any(abuse.refuse(1.0 + i * 0.1) for i in range(10))
    assert abuse.refuse(2.5)  # the 11th within 5 s
    spaced = Abuse(limit=10, window=5.0)  # 10 per window, window after window: tolerated
    assert not any(spaced.refuse(w * 5.1 + i * 0.01) for w in range(4) for i in range(10))


def test_keyed_buckets_are_per_key_and_bounded() -> None:
    buckets = KeyedBuckets(rate=2, max_keys=100)
    assert buckets.take("alice", 0.0) == buckets.take("alice", 0.0) == 0.0
    assert buckets.take("alice", 0.0) > 0
    assert buckets.take("bob", 0.0) == 0.0  # bob has his own
    for i in range(1000):
        buckets.take(f"user{i}", 100.0 + i)
    assert len(buckets._buckets) <= 100


def test_admission_caps_users_and_workspaces_and_releases() -> None:
    admission = Admission(per_user=2, per_workspace=3)
    assert admission.admit("alice", "w1") is None
    assert admission.admit("alice", "w2") is None
    assert admission.admit("alice", "w1") == "too many connections for this user"
    assert admission.admit("bob", "w1") is None
    assert admission.admit("carol", "w1") is None
    assert admission.admit("dave", "w1") == "too many connections for this workspace"
    admission.release("carol", "w1")
    assert admission.admit("dave", "w1") is None
    admission.release("alice", "w2")
    assert admission.admit("alice", "w3") is None
    for user, ws in (("alice", "w1"), ("alice", "w3"), ("bob", "w1"), ("dave", "w1")):
        admission.release(user, ws)
    assert admission._users == {} and admission._workspaces == {}
