"""The Presence contract, run on every engine (memory, Redis); Redis also across several
nodes, with the reaping of a dead node's entries and the sync of a node that was reaped."""

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
                                 ttl_s=ttl_s, node_id=f"n{len(made)}")
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
                    "status": "online", "viewing": None, "call": None, "connections": 1}
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
async def test_dead_nodes_entries_are_reaped_exactly_once(make_presence: MakePresence) -> None:
    dead, alive, other = [await make_presence(ttl_s=1.0) for _ in range(3)]
    for node in (dead, alive, other):
        assert await node.beat()  # the first beat asks for a sync
        assert await node.sync([]) == ([], [])
        assert not await node.beat()
    await dead.join(entry("d1", user_id="gone"))
    await dead.join(entry("d2", user_id="gone"))
    await dead.join(entry("d3", user_id="stays"))  # this user also has a live tab
    await alive.join(entry("a1", user_id="stays"))
    await alive.join(entry("a2", user_id="lives"))
    assert await other.reap() == []  # every node beat within its ttl
    for _ in range(3):  # the alive nodes beat; the dead one never again
        await asyncio.sleep(0.45)
        assert not await alive.beat() and not await other.beat()
    first, second = await asyncio.gather(alive.reap(), other.reap())
    departed = first + second
    assert [(ws, user["id"], user["connections"]) for ws, user in departed] == [
        ("ws1", "gone", 0)]
    assert await alive.reap() == []
    assert await dead.leave("ws1", "d1") is None  # already removed
    assert [(u["id"], u["connections"]) for u in await other.online("ws1")] == [
        ("lives", 1), ("stays", 1)]
    left = await alive.leave("ws1", "a1")  # d3 was reaped: a1 was the user's last
    assert left is not None and left["id"] == "stays"


@redis_only
async def test_reaped_node_syncs_its_entries_back_when_it_resumes(
    make_presence: MakePresence,
) -> None:
    paused, other = await make_presence(ttl_s=1.0), await make_presence(ttl_s=1.0)
    for node in (paused, other):
        await node.beat()
        await node.sync([])
    held = [entry("p1"), entry("p2", user_id="u2")]
    for each in held:
        await paused.join(each)
    await asyncio.sleep(1.2)  # paused past its ttl
    assert sorted(user["id"] for _, user in await other.reap()) == ["u1", "u2"]
    assert await other.online("ws1") == []
    assert await paused.beat()  # resumed: its key is gone, its entries too
    joined, left = await paused.sync(held)
    assert sorted(user["id"] for _, user in joined) == ["u1", "u2"] and left == []
    assert [u["id"] for u in await other.online("ws1")] == ["u1", "u2"]
    assert not await paused.beat()
    assert await paused.join(entry("p1")) is None  # already there again: no second join


async def test_sync_makes_a_nodes_entries_exactly_the_given_ones(
    make_presence: MakePresence,
) -> None:
    presence = await make_presence()
    await presence.beat()
    await presence.sync([])
    await presence.join(entry("c1"))
    await presence.join(entry("c2", user_id="u2"))  # its leave "could not reach" the engine
    joined, left = await presence.sync([entry("c1"), entry("c3", user_id="u3")])
    assert [(ws, u["id"]) for ws, u in joined] == [("ws1", "u3")]
    assert [(ws, u["id"]) for ws, u in left] == [("ws1", "u2")]
    assert [u["id"] for u in await presence.online("ws1")] == ["u1", "u3"]
    assert await presence.sync([entry("c1"), entry("c3", user_id="u3")]) == ([], [])


@redis_only
async def test_a_closed_node_leaves_its_leftovers_to_the_next_reap(
    make_presence: MakePresence,
) -> None:
    closing, other = await make_presence(), await make_presence()
    await closing.beat()
    await closing.join(entry("c1"))
    await closing.close()  # c1's leave never reached Redis
    assert [user["id"] for _, user in await other.reap()] == ["u1"]
    assert await other.online("ws1") == []
