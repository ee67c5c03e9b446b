"""The REST API in-process (httpx's ASGI transport, real SQLite): roles, the contact
lifecycle, idempotency, the event history, errors as ``{"error": {...}}``."""

from __future__ import annotations

from typing import Any

import pytest
from inprocess import App, app  # noqa: F401 - fixture

API = "/api/workspaces"


def error_of(response: Any) -> str:
    return str(response.json()["error"]["code"])


async def test_a_caller_without_a_valid_token_gets_401(app: App) -> None:
    missing = await app.http.get(API)
    assert missing.status_code == 401 and error_of(missing) == "unauthorized"
    forged = await app.http.get(API, headers={"Authorization": "Bearer not.a.jwt"})
    assert forged.status_code == 401 and error_of(forged) == "unauthorized"
    basic = await app.http.get(API, headers={"Authorization": "Basic YWxpY2U6eA=="})
    assert basic.status_code == 401


async def test_workspaces_list_with_the_callers_role_and_only_owners_delete(app: App) -> None:
    ws = await app.workspace("alice", "bob")
    mine = (await app.http.get(API, headers=app.as_("bob"))).json()["workspaces"]
    assert [(w["id"], w["role"]) for w in mine] == [(ws, "member")]
    one = (await app.http.get(f"{API}/{ws}", headers=app.as_("alice"))).json()
    assert one["id"] == ws and one["role"] == "owner" and one["head_seq"] == 0
    assert (await app.http.delete(f"{API}/{ws}", headers=app.as_("bob"))).status_code == 403
    assert (await app.http.delete(f"{API}/{ws}", headers=app.as_("alice"))).status_code == 204
    gone = await app.http.get(f"{API}/{ws}", headers=app.as_("alice"))
    assert gone.status_code == 403 and error_of(gone) == "forbidden"


@pytest.mark.parametrize("path", ["", "/members", "/contacts", "/events", "/stats",
                                  "/sessions", "/contacts/c1", "/contacts/c1/notes"])
async def test_outsiders_and_unknown_workspaces_are_forbidden_alike(app: App, path: str) -> None:
    ws = await app.workspace("alice")
    for workspace_id in (ws, "f" * 32, "bad id!"):
        r = await app.http.get(f"{API}/{workspace_id}{path}", headers=app.as_("mallory"))
        assert r.status_code == 403 and error_of(r) == "forbidden", (workspace_id, r.text)


async def test_who_may_manage_whom(app: App) -> None:
    ws = await app.workspace("alice", "bob")
    put = app.http.put

    async def set_role(by: str, user: str, role: str) -> int:
        r = await put(f"{API}/{ws}/members/{user}", json={"role": role}, headers=app.as_(by))
        return r.status_code

    assert await set_role("bob", "carol", "member") == 403  # members manage nobody
    assert await set_role("alice", "dave", "admin") == 200
    assert await set_role("dave", "carol", "viewer") == 200  # admins add members and viewers
    assert await set_role("dave", "erin", "admin") == 403  # ... but no admins
    assert await set_role("dave", "alice", "member") == 403  # ... and touch no owner
    assert await set_role("alice", "carol", "owner") == 422  # owner is not assignable
    assert await set_role("alice", "carol", "emperor") == 422
    last_owner = await app.http.delete(f"{API}/{ws}/members/alice", headers=app.as_("alice"))
    assert last_owner.status_code == 409 and error_of(last_owner) == "conflict"
    left = await app.http.delete(f"{API}/{ws}/members/bob", headers=app.as_("bob"))
    assert left.status_code == 204  # anyone may leave
    nobody = await app.http.delete(f"{API}/{ws}/members/zed", headers=app.as_("alice"))
    assert nobody.status_code == 404
    members = (await app.http.get(f"{API}/{ws}/members", headers=app.as_("carol"))).json()
    roles = {m["user_id"]: m["role"] for m in members["members"]}
    assert roles == {"alice": "owner", "dave": "admin", "carol": "viewer"}


async def test_a_contacts_life_over_http(app: App) -> None:
    ws = await app.workspace("alice", "vera", role="viewer")
    contacts = f"{API}/{ws}/contacts"
    made = await app.http.post(contacts, json={"name": " Ada ", "tags": ["vip", "vip"]},
                               headers=app.as_("alice"))
    assert made.status_code == 201
    ada = made.json()
    assert ada["seq"] == 1 and ada["name"] == "Ada" and ada["tags"] == ["vip"]
    url = f"{contacts}/{ada['id']}"
    changed = await app.http.patch(url, json={"phone": "1", "base_version": 1},
                                   headers=app.as_("alice"))
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = await app.http.patch(url, json={"phone": "2"}, headers=app.as_("alice", **{
        "If-Match": '"1"'}))  # phone changed since version 1
    assert stale.status_code == 409 and error_of(stale) == "conflict"
    assert stale.json()["error"]["details"]["fields"] == ["phone"]
    merged = await app.http.patch(url, json={"email": "ada@example.com"},
                                  headers=app.as_("alice", **{"If-Match": "1"}))
    assert merged.status_code == 200 and merged.json()["phone"] == "1"  # other fields merge
    bad = await app.http.patch(url, json={"email": None}, headers=app.as_("alice", **{
        "If-Match": "soon"}))
    assert bad.status_code == 422 and error_of(bad) == "validation_failed"
    note = await app.http.post(f"{url}/notes", json={"body": "met at the conference"},
                               headers=app.as_("alice"))
    assert note.status_code == 201
    viewer = await app.http.post(contacts, json={"name": "x"}, headers=app.as_("vera"))
    assert viewer.status_code == 403  # viewers read only
    notes = (await app.http.get(f"{url}/notes", headers=app.as_("vera"))).json()
    assert [n["body"] for n in notes["notes"]] == ["met at the conference"]
    assert (await app.http.delete(url, headers=app.as_("alice"))).status_code == 200
    assert (await app.http.get(url, headers=app.as_("vera"))).status_code == 404
    tombstone = await app.http.get(url, params={"include_deleted": "true"},
                                   headers=app.as_("vera"))
    assert tombstone.json()["deleted"] is True
    again = await app.http.delete(url, headers=app.as_("alice"))
    assert again.status_code == 404 and error_of(again) == "not_found"


async def test_contacts_page_by_id_with_after(app: App) -> None:
    ws = await app.workspace("alice")
    for name in ("a", "b", "c", "d", "e"):
        await app.http.post(f"{API}/{ws}/contacts", json={"name": name},
                            headers=app.as_("alice"))
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
        page = (await app.http.get(f"{API}/{ws}/contacts", params=params,
                                   headers=app.as_("alice"))).json()
        seen += [c["name"] for c in page["contacts"]]
        after = page["next"]
        if not after:
            break
    assert sorted(seen) == ["a", "b", "c", "d", "e"] and len(seen) == 5


async def test_a_retried_idempotency_key_is_applied_once(app: App) -> None:
    ws = await app.workspace("alice", "bob")
    contacts = f"{API}/{ws}/contacts"
    first = await app.http.post(contacts, json={"name": "Grace"},
                                headers=app.as_("alice", **{"Idempotency-Key": "k1"}))
    retry = await app.http.post(contacts, json={"name": "Grace"},
                                headers=app.as_("alice", **{"Idempotency-Key": "k1"}))
    assert retry.status_code == first.status_code == 201
    assert retry.json() == first.json()
    other_user = await app.http.post(contacts, json={"name": "Grace"},
                                     headers=app.as_("bob", **{"Idempotency-Key": "k1"}))
    assert other_user.json()["seq"] == 2  # keys are per user
    too_long = await app.http.post(contacts, json={"name": "x"},
                                   headers=app.as_("alice", **{"Idempotency-Key": "k" * 65}))
    assert too_long.status_code == 422
    events = (await app.http.get(f"{API}/{ws}/events", headers=app.as_("alice"))).json()
    assert [e["seq"] for e in events["events"]] == [1, 2]


async def test_the_event_history_pages_and_refuses_a_since_outside_the_log(app: App) -> None:
    ws = await app.workspace("alice")
    for i in range(5):
        await app.http.post(f"{API}/{ws}/contacts", json={"name": f"c{i}"},
                            headers=app.as_("alice"))
    page = (await app.http.get(f"{API}/{ws}/events", params={"since": 1, "limit": 2},
                               headers=app.as_("alice"))).json()
    assert [e["seq"] for e in page["events"]] == [2, 3] and page["has_more"] is True
    assert {e["type"] for e in page["events"]} == {"contact_created"}
    ahead = await app.http.get(f"{API}/{ws}/events", params={"since": 9},
                               headers=app.as_("alice"))
    assert ahead.status_code == 410 and error_of(ahead) == "resync_required"
    details = ahead.json()["error"]["details"]
    assert details == {"oldest_seq": 1, "head_seq": 5, "epoch": details["epoch"]}
    assert details["epoch"]
    negative = await app.http.get(f"{API}/{ws}/events", params={"since": -1},
                                  headers=app.as_("alice"))
    assert negative.status_code == 422 and error_of(negative) == "validation_failed"


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{oops", 400, "invalid_json"),
    (b"", 400, "invalid_json"),
    (b"[1, 2]", 422, "validation_failed"),
    (b'{"name": ""}', 422, "validation_failed"),
    (b'{"name": "x", "colour": "red"}', 422, "validation_failed"),
    (b'{"name": "' + b"x" * 300_000 + b'"}', 413, "too_large"),
])
async def test_bad_bodies_get_a_precise_error(app: App, body: bytes, status: int,
                                              code: str) -> None:
    ws = await app.workspace("alice")
    r = await app.http.post(f"{API}/{ws}/contacts", content=body, headers=app.as_("alice"))
    assert r.status_code == status and error_of(r) == code, r.text
    assert r.json()["error"]["message"]


async def test_analytics_show_members_their_own_and_managers_everyones(app: App) -> None:
    ws = await app.workspace("alice", "bob")
    await app.http.post(f"{API}/{ws}/contacts", json={"name": "x"}, headers=app.as_("bob"))
    mine = (await app.http.get(f"{API}/{ws}/stats", headers=app.as_("bob"))).json()
    every = (await app.http.get(f"{API}/{ws}/stats", headers=app.as_("alice"))).json()
    assert mine["scope"] == "mine" and every["scope"] == "all"
    assert every["events_by_type"] == {"contact_created": 1}
    assert every["most_active_users"] == [{"user_id": "bob", "events": 1}]
    sessions = (await app.http.get(f"{API}/{ws}/sessions", headers=app.as_("bob"))).json()
    assert sessions == {"sessions": [], "count": 0}


async def test_health_readiness_metrics_and_the_openapi_document(app: App) -> None:
    health = (await app.http.get("/ws/health")).json()
    assert health["status"] == "healthy" and health["total_connections"] == 0
    ready = await app.http.get("/ws/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    metrics = (await app.http.get("/metrics")).text
    assert "livespace_connections " in metrics
    spec = (await app.http.get("/openapi.json")).json()
    assert spec["info"]["version"] == __import__("livespace").__version__
    assert "/api/workspaces/{workspace_id}/contacts" in spec["paths"]
    ws = await app.workspace("alice")
    online = (await app.http.get(f"/ws/workspace/{ws}/users", headers=app.as_("alice"))).json()
    assert online == {"workspace_id": ws, "users": [], "count": 0, "has_more": False}
