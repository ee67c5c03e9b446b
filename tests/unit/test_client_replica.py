"""The SDK's copy of a workspace (pure): dedupe by seq, upserts by version, presence."""

from __future__ import annotations

import random
from typing import Any

from livespace.client.replica import Replica, backoff


def event(seq: int, type: str, cid: str, version: int, **data: Any) -> dict[str, Any]:
    return {"type": type, "seq": seq, "data": {"id": cid, "version": version, **data}}


def test_events_apply_once_and_contacts_keep_the_highest_version() -> None:
    r = Replica()
    r.load([{"id": "a", "version": 3, "name": "A3"}], seq=10, epoch="e1")
    assert not r.apply(event(9, "contact_updated", "a", 2, name="A2"))  # before the snapshot
    assert r.apply(event(11, "contact_updated", "a", 3, name="stale"))  # a page read later
    assert r.contacts["a"]["name"] == "A3"
    assert r.apply(event(12, "contact_updated", "a", 4, name="A4", changed=["name"]))
    assert r.contacts["a"] == {"id": "a", "version": 4, "name": "A4"}
    assert not r.apply(event(12, "contact_updated", "a", 4))  # a duplicate
    assert r.apply(event(13, "contact_deleted", "a", 5, deleted=True))
    assert "a" not in r.contacts
    assert r.apply(event(14, "contact_updated", "a", 4, name="late"))  # older than the delete
    assert "a" not in r.contacts and r.seq == 14
    assert r.apply({"type": "note_added", "seq": 15, "data": {"id": "n1"}})
    r.caught_up(20)  # a compacted replay that ended at 20
    assert r.seq == 20


def test_presence_from_welcome_and_frames() -> None:
    r = Replica()
    r.welcome({"presence": [{"id": "u1"}, {"id": "u2"}]})
    r.on_presence({"event": "join", "user": {"id": "u3"}})
    r.on_presence({"event": "leave", "user": {"id": "u1"}})
    r.on_presence({"event": "update", "user": {"id": "u2", "status": "busy"}})
    assert r.presence == {"u2": {"id": "u2", "status": "busy"}, "u3": {"id": "u3"}}
    r.on_presence({"event": "diff", "joins": [{"id": "u4"}], "leaves": [{"id": "u3"}],
                   "updates": [{"id": "u2", "status": "away"}]})
    assert set(r.presence) == {"u2", "u4"} and r.presence["u2"]["status"] == "away"


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    delays = [backoff(n, low=0.5, high=8.0, rng=rng) for n in range(10)]
    assert 0.25 <= delays[0] <= 0.5 and all(4.0 <= d <= 8.0 for d in delays[5:])
    assert len({round(d, 6) for d in delays[5:]}) > 1
