"""Pure presence rules: aggregation over a user's tabs, Entry JSON, MemoryPresence."""

from __future__ import annotations

from typing import Any

import pytest

from livespace.presence import Entry, aggregate, open_presence
from livespace.presence.memory import MemoryPresence


def entry(conn_id: str, user_id: str = "u1", updated: float = 1.0, **kw: Any) -> Entry:
    return Entry(conn_id=conn_id, workspace_id="ws1", user_id=user_id, email=None,
                 name=user_id, role="member", updated=updated, **kw)


def test_aggregate_of_nothing_is_empty() -> None:
    assert aggregate([]) == []


def test_aggregate_counts_tabs_per_user_sorted_by_id() -> None:
    users = aggregate([entry("c1", "u2"), entry("c2", "u1"), entry("c3", "u2")])
    assert [(u["id"], u["connections"]) for u in users] == [("u1", 1), ("u2", 2)]


def test_aggregate_takes_status_and_viewing_of_newest_tab() -> None:
    users = aggregate([
        entry("c1", status="busy", viewing="k1", updated=3.0),
        entry("c2", status="away", viewing=None, updated=2.0),
    ])
    assert [(u["status"], u["viewing"]) for u in users] == [("busy", "k1")]


def test_user_dict_shape() -> None:
    assert entry("c1").user(2) == {"id": "u1", "email": None, "name": "u1", "role": "member",
                                   "status": "online", "viewing": None, "call": None,
                                   "connections": 2}


def test_entry_json_round_trip() -> None:
    original = entry("c1", status="in_call", viewing="k9", node="n1")
    assert Entry.from_json(original.to_json()) == original


async def test_memory_presence_rejoin_of_same_connection_is_not_a_join() -> None:
    presence = MemoryPresence()
    assert await presence.join(entry("c1")) is not None
    assert await presence.join(entry("c1")) is None
    assert [u["connections"] for u in await presence.online("ws1")] == [1]


async def test_memory_presence_never_expires() -> None:
    presence = MemoryPresence(ttl_s=0.0)
    await presence.join(entry("c1"))
    assert not await presence.beat()
    assert await presence.reap() == []
    assert len(await presence.online("ws1")) == 1
    await presence.close()
    assert await presence.online("ws1") == []


async def test_memory_presence_leave_reports_zero_connections() -> None:
    presence = MemoryPresence()
    await presence.join(entry("c1"))
    left = await presence.leave("ws1", "c1")
    assert left is not None and left["connections"] == 0


def test_open_presence_picks_the_engine_by_url_scheme() -> None:
    assert isinstance(open_presence(None), MemoryPresence)
    with pytest.raises(ValueError, match="unsupported REDIS_URL scheme: 'nats'"):
        open_presence("nats://127.0.0.1:4222")
