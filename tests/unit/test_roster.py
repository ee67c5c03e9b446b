"""The room's roster and the handshake caches (pure)."""

from __future__ import annotations

import asyncio
import time

from livespace.roster import WELCOME_PRESENCE_MAX, Roster
from livespace.verified import Memberships, VerifiedTokens


def user(uid: str, connections: int = 1, status: str = "online") -> dict[str, object]:
    return {"id": uid, "status": status, "connections": connections}


def test_roster_follows_joins_leaves_updates_diffs_and_tabs() -> None:
    roster = Roster()
    roster.seed([user("a"), user("b")])
    roster.apply({"type": "presence", "event": "join", "user": user("c")})
    roster.apply({"type": "presence", "event": "leave", "user": user("a", 0)})
    roster.apply({"type": "presence", "event": "update", "user": user("b", 1, "busy")})
    roster.tabs("c", 1)
    roster.apply({"type": "presence", "event": "diff", "joins": [user("d")],
                  "leaves": [user("b", 0)], "updates": [user("c", 2, "away")]})
    roster.tabs("nobody", 1)
    roster.apply({"event": "join", "user": "not a user"})
    assert roster.users == {"c": user("c", 2, "away"), "d": user("d")}


def test_welcome_counts_the_joining_tab_and_is_bounded() -> None:
    roster = Roster()
    roster.seed([user("bob"), user("carol")])
    seen = roster.welcome(user("bob"), first=False)  # bob's second tab
    assert {u["id"]: u["connections"] for u in seen["presence"]} == {"bob": 2, "carol": 1}
    assert (seen["presence_count"], seen["presence_truncated"]) == (2, False)
    new = roster.welcome(user("dave"), first=True)
    assert [u["id"] for u in new["presence"]] == ["bob", "carol", "dave"]
    assert new["presence_count"] == 3

    roster.seed([user(f"u{i:05}") for i in range(5000)])
    big = roster.welcome(user("me"), first=True)
    assert len(big["presence"]) == WELCOME_PRESENCE_MAX
    assert "me" in {u["id"] for u in big["presence"]}
    assert (big["presence_count"], big["presence_truncated"]) == (5001, True)


def test_verified_tokens_until_exp_by_hash_and_bounded() -> None:
    tokens: VerifiedTokens[str] = VerifiedTokens(max_entries=2)
    now = time.time()
    tokens.put("t1", "alice", now + 60)
    tokens.put("gone", "bob", now - 1)
    tokens.put("no-exp", "carol", None)
    assert tokens.get("t1") == "alice"
    assert tokens.get("gone") is None and tokens.get("no-exp") is None
    assert all(len(key) == 32 for key in tokens._entries)  # hashes, not tokens
    tokens.put("t2", "dave", now + 60)
    tokens.put("t3", "erin", now + 60)
    assert len(tokens) == 2 and tokens.get("t3") == "erin"


async def test_memberships_cache_roles_and_forget_on_control() -> None:
    roles = {("w", "alice"): "owner", ("w", "bob"): "member"}
    reads: list[tuple[str, str]] = []

    async def read(ws: str, uid: str) -> str | None:
        reads.append((ws, uid))
        await asyncio.sleep(0)
        return roles.get((ws, uid))

    members = Memberships(read)
    assert await members.role("w", "alice") == "owner"
    assert await members.role("w", "alice") == "owner"
    assert await members.role("w", "nobody") is None
    assert await members.role("w", "nobody") is None  # a refusal is read again
    assert reads == [("w", "alice"), ("w", "nobody"), ("w", "nobody")]

    roles[("w", "alice")] = "admin"
    members.on_control("w", {"kind": "role_changed", "user_id": "alice", "role": "admin"})
    assert await members.role("w", "alice") == "admin"
    # a change heard while a read was on its way: that read's answer is not kept
    pending = asyncio.ensure_future(members.role("w", "bob"))
    await asyncio.sleep(0)
    members.on_control("w", {"kind": "member_removed", "user_id": "bob"})
    del roles[("w", "bob")]
    await pending
    assert await members.role("w", "bob") is None
    members.on_control("w", {"kind": "workspace_deleted"})
    members.clear()
    assert len(members) == 0


async def test_deadlines_run_due_callbacks_in_order_once_unless_cancelled() -> None:
    from livespace.deadlines import Deadlines

    deadlines = Deadlines()
    fired: list[str] = []
    now = time.time()
    deadlines.add(now + 0.2, lambda: fired.append("late"))
    deadlines.add(now + 0.05, lambda: fired.append("soon"))
    gone = deadlines.add(now + 0.1, lambda: fired.append("cancelled"))
    deadlines.add(now - 1, lambda: fired.append("past"))
    gone.cancel()
    await asyncio.sleep(0.4)
    assert fired == ["past", "soon", "late"]
    assert len(deadlines) == 0
