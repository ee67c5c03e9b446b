"""``POST /api/workspaces/{id}/contacts/import``: up to 1,000 contacts, all or nothing,
idempotent, against a real server on SQLite and PostgreSQL (DESIGN.md section 4; issue 8)."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Server, ServerFactory
from livespace.client import Client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    return servers(LIVESPACE_HTTP_RATE_LIMIT="100000")


def people(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": f"Person {i}", "email": f"p{i}@example.com", "tags": ["imported"],
             "fields": {"n": i}, **extra} for i in range(count)]


async def head(server: Server, ws: str) -> int:
    async with server.api("alice") as api:
        r = await api.get(f"/api/workspaces/{ws}/events", params={"limit": 1})
    return int(r.json()["head_seq"])


async def test_import_creates_all_with_one_event_each(server: Server,
                                                      clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    bob = await server.connect(ws, "bob")
    clients.append(bob)
    async with server.api("alice") as api:
        await api.post(f"/api/workspaces/{ws}/contacts", json={"name": "Before"})
        r = await api.post(f"/api/workspaces/{ws}/contacts/import",
                           json={"contacts": people(1000)})
        assert r.status_code == 201, r.text
        body = r.json()
        listed = (await api.get(f"/api/workspaces/{ws}/contacts",
                                params={"limit": 1000, "after": ""})).json()
    created = body["contacts"]
    assert len(created) == 1000 and body["seq"] == 1001
    assert [c["seq"] for c in created] == list(range(2, 1002))
    assert [c["name"] for c in created] == [f"Person {i}" for i in range(1000)]
    assert created[7]["fields"] == {"n": 7} and created[7]["version"] == 1
    assert len(listed["contacts"]) == 1000 and listed["seq"] == 1001
    events = await bob.events(1001, timeout=30)
    assert [e["seq"] for e in events] == list(range(1, 1002))
    assert {e["type"] for e in events} == {"contact_created"}
    assert [e["data"]["id"] for e in events[1:]] == [c["id"] for c in created]


async def test_an_invalid_item_is_named_and_nothing_is_created(server: Server) -> None:
    ws = await server.workspace("alice", viewers=("vic",))
    path = f"/api/workspaces/{ws}/contacts/import"
    bad = people(10)
    bad[3]["email"] = "not an email"
    async with server.api("alice") as api:
        r = await api.post(path, json={"contacts": bad})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "validation_failed" and error["details"]["index"] == 3
        assert error["details"]["field"] == "email" and "contacts[3]" in error["message"]
        bodies: list[Any] = [{"contacts": []}, {"contacts": people(1001)}, {"contacts": "x"},
                             {"people": []}, [1], {"contacts": [{"name": "ok"}, 5]}]
        for body in bodies:
            r = await api.post(path, json=body)
            assert r.status_code == 422, (body, r.text)
    assert await head(server, ws) == 0
    async with server.api("vic") as api:
        r = await api.post(path, json={"contacts": people(2)})
        assert r.status_code == 403
    assert await head(server, ws) == 0


async def test_a_retry_with_the_same_idempotency_key_is_applied_once(server: Server) -> None:
    ws = await server.workspace("alice")
    path = f"/api/workspaces/{ws}/contacts/import"
    async with server.api("alice") as api:
        first = await api.post(path, json={"contacts": people(50)},
                               headers={"Idempotency-Key": "import-1"})
        again = await api.post(path, json={"contacts": people(50)},
                               headers={"Idempotency-Key": "import-1"})
        other = await api.post(path, json={"contacts": people(5)},
                               headers={"Idempotency-Key": "import-2"})
    assert first.status_code == again.status_code == other.status_code == 201
    assert again.json() == first.json()
    assert other.json()["seq"] == 55
    assert await head(server, ws) == 55
