"""The store goes away and comes back (a PostgreSQL of the test's own, stopped with an
immediate shutdown): clients are told ``unavailable`` with ``retry_after`` (socket) or
503 with ``Retry-After`` (HTTP), nothing is applied, ``/ws/ready`` says 503, and once
the store is back the same ref applies once, without restarting anything."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.chaos.services import Postgres

from conftest import Server
from livespace.client import Client

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # starts processes itself


@pytest.fixture
def private_pg() -> Iterator[Postgres]:
    pg = Postgres().init()
    try:
        yield pg
    finally:
        pg.remove()


async def ready_status(server: Server) -> int:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(f"{server.http}/ws/ready")).status_code


async def test_store_outage_is_unavailable_and_the_retry_applies_once(
        private_pg: Postgres, tmp_path: Path, clients: list[Client]) -> None:
    server = Server(tmp_path / "srv", private_pg.url, JWT_SECRET=secrets.token_urlsafe(48),
                    LIVESPACE_HTTP_RATE_LIMIT="1000").start()
    server.secret = server.env["JWT_SECRET"]
    try:
        ws = await server.workspace("alice", "bob")
        alice = await server.connect(ws, "alice")
        bob = await server.connect(ws, "bob")
        clients += [alice, bob]
        assert (await alice.request("contact_created", {"name": "Before"}))["seq"] == 1
        assert await ready_status(server) == 200

        private_pg.stop("immediate")
        refused = await alice.request("contact_created", {"name": "During"}, ref="during-1",
                                      timeout=15)
        assert refused["type"] == "error" and refused["code"] == "unavailable", refused
        assert refused["ref"] == "during-1" and refused["retry_after"] > 0
        async with server.api("bob") as api:
            r = await api.post(f"/api/workspaces/{ws}/contacts", json={"name": "Rest"},
                               headers={"Idempotency-Key": "rest-1"})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert int(r.headers["Retry-After"]) >= 1
        assert await ready_status(server) == 503
        assert (await alice.request("ping"))["type"] == "pong"  # the socket stays open

        private_pg.start()  # nothing is restarted on the livespace side
        deadline = time.monotonic() + 30
        while await ready_status(server) != 200:
            assert time.monotonic() < deadline, "not ready again"
            await asyncio.sleep(0.2)
        first = await alice.request("contact_created", {"name": "During"}, ref="during-1")
        again = await alice.request("contact_created", {"name": "During"}, ref="during-1")
        assert first["type"] == again["type"] == "ack", (first, again)
        assert first["seq"] == again["seq"] == 2 and first["data"] == again["data"]
        async with server.api("bob") as api:
            r = await api.post(f"/api/workspaces/{ws}/contacts", json={"name": "Rest"},
                               headers={"Idempotency-Key": "rest-1"})
        assert r.status_code == 201 and r.json()["seq"] == 3, r.text
        names = [e["data"]["name"] for e in await server.events("alice", ws)]
        assert names == ["Before", "During", "Rest"]  # nothing from the outage, once each
        assert [e["seq"] for e in await bob.events(3)] == [1, 2, 3]
    finally:
        server.stop()
