"""The Presence contract, run on every engine (memory, Redis); Redis also across two nodes
and with expiry of a dead node's entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from seams import engine, redis_target  # noqa: F401 - fixtures

from livespace.presence import Entry, Presence, open_presence
from livespace.presence.memory import MemoryPresence
from livespace.presence.redis import RedisPresence

pytestmark = pytest.mark.integration

MakePresence = Callable[..., Awaitable[Presence]]


def entry(conn_id: str, user_id: str = "u1", workspace_id: str = "ws1", **kw: Any) -> Entry:
    return Entry(conn_id=conn_id, workspace_id=workspace_id, user_id=user_id,
                 email=f"{user_id}@example.com", name=user_id.upper(), role="member", **kw)


@pytest.fixture
async def make_presence(
    engine: str, redis_target: tuple[str, str]
) -> AsyncIterator[MakePresence]:
    """Makes presences of the engine under test (Redis: each one a node sharing the prefix)."""
    made: list[Presence] = []
    url, prefix = redis_target

    async def make(ttl_s: float = 30.0) -> Presence:
        # chosen by URL scheme, as a node does
        presence = open_presence(None if engine == "memory" else url, prefix=prefix,
                                 ttl_s=ttl_s)
        assert isinstance(presence, MemoryPresence if engine == "memory" else RedisPresence)
        made.append(presence)
        return presence

    yield make
    for presence in made:
        await presence.close()


async def test_join_announces_first_tab_only(make_presence: MakePresence) -> None:
    presence = await make_presence()
    user = await presence.join(entry("c1"))
    assert user == {"id": "u1", "email": "u1@example.com", "name": "U1", "role": "member",
                    "status": "online", "viewing": None, "connections": 1}
    assert await presence.join(entry("c2")) is None
    assert (await presence.join(entry("c3", user_id="u2"))) is not None


async def test_workspaces_are_separate(make_presence: MakePresence) -> None:
    presence = await make_presence()
    assert await presence.join(entry("c1", workspace_id="ws1")) is not None
    assert await presence.join(entry("c2", workspace_id="ws2")) is not None
    assert [u["connections"] for u in await presence.online("ws1")] == [1]
    assert await presence.leave("ws2", "c1") is None


async def test_leave_announces_last_tab_only(make_presence: MakePresence) -> None:
    presence = await make_presence()
    await presence.join(entry("c1"))
    await presence.join(entry("c2"))
    assert await presence.leave("ws1", "c1") is None
    left = await presence.leave("ws1", "c2")
    assert left is not None and left["id"] == "u1"
    assert await presence.leave("ws1", "c2") is None  # already gone
    assert await presence.leave("ws1", "nope") is None
    assert await presence.online("ws1") == []


async def test_update_reports_the_aggregated_user(make_presence: MakePresence) -> None:
    presence = await make_presence()
    await presence.join(entry("c1"))
    await presence.join(entry("c2"))
    user = await presence.update("ws1", "c1", "busy", None, viewing_given=False)
    assert user is not None
    assert (user["status"], user["viewing"], user["connections"]) == ("busy", None, 2)
    user = await presence.update("ws1", "c1", None, "contact-7", viewing_given=True)
    assert user is not None and (user["status"], user["viewing"]) == ("busy", "contact-7")
    user = await presence.update("ws1", "c1", None, None, viewing_given=True)
    assert user is not None and user["viewing"] is None


async def test_update_without_change_reports_nothing(make_presence: MakePresence) -> None:
    presence = await make_presence()
    await presence.join(entry("c1"))
    assert await presence.update("ws1", "c1", "online", None, viewing_given=False) is None
    assert await presence.update("ws1", "c1", None, None, viewing_given=True) is None
    assert await presence.update("ws1", "unknown", "busy", None, viewing_given=False) is None


async def test_newest_connection_wins(make_presence: MakePresence) -> None:
    presence = await make_presence()
    await presence.join(entry("c1"))
    await presence.join(entry("c2"))
    await presence.update("ws1", "c1", "busy", "contact-1", viewing_given=True)
    user = await presence.update("ws1", "c2", "away", None, viewing_given=False)
    assert user is not None and (user["status"], user["viewing"]) == ("away", None)
    user = await presence.update("ws1", "c1", None, "contact-2", viewing_given=True)
    assert user is not None and (user["status"], user["viewing"]) == ("busy", "contact-2")
    [online] = await presence.online("ws1")
    assert (online["status"], online["viewing"], online["connections"]) == (
        "busy", "contact-2", 2)


async def test_online_lists_users_aggregated(make_presence: MakePresence) -> None:
    presence = await make_presence()
    await presence.join(entry("c1", user_id="u2"))
    await presence.join(entry("c2", user_id="u1"))
    await presence.join(entry("c3", user_id="u2"))
    await presence.join(entry("c4", user_id="u3", workspace_id="ws2"))
    users = await presence.online("ws1")
    assert [(u["id"], u["connections"]) for u in users] == [("u1", 1), ("u2", 2)]
    assert await presence.online("empty") == []


# --- Redis: several nodes share the state ----------------------------------------------

redis_only = pytest.mark.parametrize("engine", ["redis"], indirect=True)


@redis_only
async def test_two_nodes_agree_on_first_and_last(make_presence: MakePresence) -> None:
    node_a, node_b = await make_presence(), await make_presence()
    assert await node_a.join(entry("a1")) is not None
    assert await node_b.join(entry("b1")) is None
    assert await node_a.online("ws1") == await node_b.online("ws1")
    assert (await node_b.online("ws1"))[0]["connections"] == 2
    assert await node_a.leave("ws1", "a1") is None
    assert await node_b.leave("ws1", "b1") is not None


@redis_only
async def test_concurrent_joins_and_leaves_announce_once(make_presence: MakePresence) -> None:
    nodes = [await make_presence() for _ in range(4)]
    joins = await asyncio.gather(*(n.join(entry(f"c{i}")) for i, n in enumerate(nodes)))
    assert sum(j is not None for j in joins) == 1
    leaves = await asyncio.gather(*(n.leave("ws1", f"c{i}") for i, n in enumerate(nodes)))
    assert sum(left is not None for left in leaves) == 1


@redis_only
async def test_dead_nodes_entries_expire_exactly_once(make_presence: MakePresence) -> None:
    dead, alive, other = [await make_presence(ttl_s=1.0) for _ in range(3)]
    await dead.join(entry("d1", user_id="gone"))
    await dead.join(entry("d2", user_id="gone"))
    await dead.join(entry("d3", user_id="stays"))  # this user also has a live tab
    await alive.join(entry("a1", user_id="stays"))
    await alive.join(entry("a2", user_id="lives"))
    for _ in range(3):  # the alive node refreshes every ttl/3; the dead one never
        await asyncio.sleep(0.5)
        await alive.refresh("ws1", ["a1", "a2"])
    assert [u["id"] for u in await other.online("ws1")] == ["lives", "stays"]
    first, second = await asyncio.gather(alive.expire(), other.expire())
    departed = first + second
    assert [(ws, user["id"], user["connections"]) for ws, user in departed] == [
        ("ws1", "gone", 0)]
    assert await alive.expire() == []
    assert await dead.leave("ws1", "d1") is None  # already removed
    assert [(u["id"], u["connections"]) for u in await other.online("ws1")] == [
        ("lives", 1), ("stays", 1)]


@redis_only
async def test_leave_of_last_live_tab_takes_expired_tabs_along(
    make_presence: MakePresence,
) -> None:
    dead, alive = await make_presence(ttl_s=1.0), await make_presence(ttl_s=1.0)
    await dead.join(entry("d1"))
    await alive.join(entry("a1"))
    await asyncio.sleep(1.2)
    assert await alive.leave("ws1", "a1") is not None
    assert await alive.expire() == []  # no second leave for the same user


@redis_only
async def test_rejoin_after_expiry_is_announced(make_presence: MakePresence) -> None:
    presence = await make_presence(ttl_s=1.0)
    await presence.join(entry("c1"))
    await asyncio.sleep(1.2)
    assert await presence.online("ws1") == []
    assert await presence.join(entry("c2")) is not None
    assert await presence.expire() == []  # the user is back: no leave for the old tab
    assert [u["connections"] for u in await presence.online("ws1")] == [1]


async def test_refresh_reports_connections_it_holds_no_entry_for(
    make_presence: MakePresence,
) -> None:
    presence = await make_presence()
    await presence.join(entry("c1"))
    await presence.join(entry("c2"))
    await presence.leave("ws1", "c2")
    assert await presence.refresh("ws1", ["c1", "c2", "c3"]) == ["c2", "c3"]
    assert await presence.refresh("ws1", []) == []
    assert await presence.join(entry("c2")) is None  # joined again: c1 still holds u1
    assert await presence.refresh("ws1", ["c1", "c2"]) == []
