"""Per-user limits hold across nodes (counted in Redis), and failed handshakes are
throttled per client address."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_cluster import Cluster, cluster, kill  # noqa: F401 - the fixture

from conftest import Server, ServerFactory
from livespace.client import Client, Refused

pytestmark = pytest.mark.integration


async def refused_code(coro: object) -> int | None:
    try:
        client = await coro  # type: ignore[misc]
    except Refused as refused:
        return refused.code
    await client.close()
    return None


async def admitted(server: Server, ws: str, within: float = 5) -> Client:
    """A connection of alice, once a released one is no longer counted."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await server.connect(ws, "alice")
        except Refused as refused:
            assert refused.code == 4008 and time.monotonic() < deadline, refused
            await asyncio.sleep(0.1)


async def test_connection_cap_per_user_counts_every_node(
        cluster: Cluster, clients: list[Client]) -> None:
    cluster.env["LIVESPACE_MAX_CONNECTIONS_PER_USER"] = "2"
    a, b = cluster.start(2)
    ws = await a.workspace("alice")
    clients += [await a.connect(ws, "alice"), await b.connect(ws, "alice")]
    assert await refused_code(a.connect(ws, "alice")) == 4008
    assert await refused_code(b.connect(ws, "alice")) == 4008
    await clients.pop().close()  # the tab on B goes: one may open again, on either node
    clients.append(await admitted(b, ws))
    kill(b)  # the dead node's count is reaped with its presence, within the bound
    clients.append(await admitted(a, ws, within=10))


async def test_user_rate_limit_counts_every_node(
        cluster: Cluster, clients: list[Client]) -> None:
    cluster.env.update({"LIVESPACE_USER_RATE_LIMIT": "10", "LIVESPACE_RATE_LIMIT": "1000"})
    a, b = cluster.start(2)
    ws = await a.workspace("alice")
    tabs = [await a.connect(ws, "alice"), await b.connect(ws, "alice")]
    clients += tabs
    for tab in tabs:  # 15 pings on each node at once: 30 against 10/s for the user
        for i in range(15):
            await tab.send("ping", ref=f"p{i}")
    def answer(ref: str) -> Callable[[dict[str, Any]], bool]:
        return lambda frame: frame.get("ref") == ref

    answers = [await tab.next(where=answer(f"p{i}")) for tab in tabs for i in range(15)]
    passed = sum(f["type"] == "pong" for f in answers)
    limited = [f for f in answers if f["type"] == "error"]
    assert limited and all(f["code"] == "rate_limited" for f in limited)
    assert 10 <= passed < 20, passed  # per node it would be 20 (10 on each)


async def test_http_rate_limit_counts_every_node(cluster: Cluster) -> None:
    cluster.env["LIVESPACE_HTTP_RATE_LIMIT"] = "5"
    a, b = cluster.start(2)
    ws = await a.workspace("alice")
    statuses = []
    for node in (a, b):
        async with node.api("bob") as api:
            statuses += [(await api.get("/api/workspaces")).status_code for _ in range(8)]
    assert statuses.count(429) > 0
    assert 5 <= statuses.count(200) < 10, statuses  # per node it would be 10
    assert ws


async def test_failed_handshakes_are_throttled_per_address(tmp_path: Path) -> None:
    factory = ServerFactory("sqlite", tmp_path, None)
    try:
        server = factory(LIVESPACE_AUTH_FAILURE_RATE="1")  # burst 5
        ws = await server.workspace("alice")
        codes = [await refused_code(Client.connect(server.ws, ws, "not-a-token"))
                 for _ in range(8)]
        assert codes[:5] == [4001] * 5 and set(codes[5:]) == {4008}, codes
        assert "too many failed handshakes" in server.logs()
        await asyncio.sleep(1.2)  # one failure's worth refilled: a good token works
        client = await server.connect(ws, "alice")
        await client.close()
    finally:
        factory.close()
