"""Presence in a large workspace: changes are coalesced into diff frames."""

from __future__ import annotations

import asyncio

import pytest

from conftest import ServerFactory
from livespace.client import Client

pytestmark = pytest.mark.integration

ROOM = 100  # presence_fanout.PRESENCE_COALESCE_AT
NEWCOMERS = 10


@pytest.fixture(scope="module", params=["sqlite"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)  # presence does not touch the store's engine


async def test_joins_in_a_large_room_arrive_as_few_diff_frames(
    servers: ServerFactory, clients: list[Client]
) -> None:
    server = servers(LIVESPACE_HTTP_RATE_LIMIT="1000")
    users = [f"u{i}" for i in range(ROOM + NEWCOMERS)]
    ws = await server.workspace("owner", *users)
    for user in users[:ROOM]:
        clients.append(await server.connect(ws, user))
    observer = clients[0]
    await asyncio.sleep(0.5)  # the last coalesced diff of the first hundred has gone out
    await observer.request("ping")
    observer.inbox.clear()

    newcomers = await asyncio.gather(*(server.connect(ws, u) for u in users[ROOM:]))
    clients.extend(newcomers)
    joined: set[str] = set()
    frames = 0
    while not set(users[ROOM:]) <= joined:
        frame = await observer.next("presence", timeout=5)
        frames += 1
        if frame["event"] == "diff":
            joined |= {u["id"] for u in frame["joins"]}
            assert frame["leaves"] == [] and frame["updates"] == []
        else:
            assert frame["event"] == "join"
            joined.add(frame["user"]["id"])
    assert frames < NEWCOMERS  # coalesced, not one frame per join

    for client in newcomers:
        await client.close()
    left: set[str] = set()
    while not set(users[ROOM:]) <= left:
        frame = await observer.next("presence", timeout=5)
        if frame["event"] == "diff":
            left |= {u["id"] for u in frame["leaves"]}
        else:
            assert frame["event"] == "leave"
            left.add(frame["user"]["id"])


async def test_a_big_rooms_welcome_is_bounded_and_the_rest_is_paged(
        servers: ServerFactory, clients: list[Client]) -> None:
    server = servers(LIVESPACE_HTTP_RATE_LIMIT="1000")
    users = [f"b{i:03}" for i in range(120)]
    ws = await server.workspace("owner", *users)
    for user in users[:119]:
        clients.append(await server.connect(ws, user))
    last = await server.connect(ws, users[119])
    clients.append(last)
    welcome = last.welcome
    listed = {u["id"] for u in welcome["presence"]}
    assert len(listed) == 100 and users[119] in listed  # WELCOME_PRESENCE_MAX, me included
    assert welcome["presence_count"] == 120 and welcome["presence_truncated"] is True
    async with server.api(users[0]) as api:
        seen: list[str] = []
        after = None
        while True:
            params: dict[str, str | int] = {"limit": 50, **({"after": after} if after else {})}
            page = (await api.get(f"/ws/workspace/{ws}/users", params=params)).json()
            seen += [u["id"] for u in page["users"]]
            assert page["count"] == 120
            if not page["has_more"]:
                break
            after = seen[-1]
    assert seen == sorted(users)
    small = await server.workspace("owner", "x")
    lone = await server.connect(small, "x")
    clients.append(lone)
    assert lone.welcome["presence_count"] == 1 and lone.welcome["presence_truncated"] is False
