"""Who is online in one workspace, as a node's room knows it (pure).

Each room keeps a :class:`Roster`, seeded once from the presence engine when the room
opens and then updated by the presence frames it relays (``join``, ``leave``,
``update``, coalesced ``diff``) and by tab-count deltas (a second tab joins, or a tab
that was not the last leaves): a ``welcome`` reads it instead of rebuilding the online
list from the engine on every join. ``welcome.presence`` holds at most
:data:`WELCOME_PRESENCE_MAX` users (the joining user always among them), with
``presence_count`` and ``presence_truncated``; ``GET /ws/workspace/{id}/users`` has them
all. The engine stays the truth: the roster is seeded again after a broker reconnect
(frames may have been lost meanwhile).
"""

from __future__ import annotations

from typing import Any

#: Users in a welcome's ``presence`` at most (documented in docs/protocol.md).
WELCOME_PRESENCE_MAX = 100


class Roster:
    """user id -> aggregated user dict (``connections``: their open tabs)."""

    __slots__ = ("users",)

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}

    def seed(self, users: list[dict[str, Any]]) -> None:
        self.users = {str(u["id"]): u for u in users if isinstance(u, dict) and "id" in u}

    def apply(self, frame: Any) -> None:
        """A presence frame as relayed to clients."""
        if not isinstance(frame, dict):
            return
        event = frame.get("event")
        if event == "diff":
            for user in (*frame.get("joins", ()), *frame.get("updates", ())):
                self._set(user)
            for user in frame.get("leaves", ()):
                self._drop(user)
        elif event in ("join", "update"):
            self._set(frame.get("user"))
        elif event == "leave":
            self._drop(frame.get("user"))

    def tabs(self, user_id: str, delta: int) -> None:
        user = self.users.get(user_id)
        if user is not None:
            count = max(1, int(user.get("connections") or 1) + delta)
            self.users[user_id] = {**user, "connections": count}

    def _set(self, user: Any) -> None:
        if isinstance(user, dict) and isinstance(user.get("id"), str):
            self.users[user["id"]] = user

    def _drop(self, user: Any) -> None:
        if isinstance(user, dict):
            self.users.pop(str(user.get("id")), None)

    def welcome(self, me: dict[str, Any], first: bool,
                limit: int = WELCOME_PRESENCE_MAX) -> dict[str, Any]:
        """``presence``, ``presence_count`` and ``presence_truncated`` for a welcome to
        a connection of ``me`` (its user dict; ``first``: its user's first tab), before
        that connection's own join or tab delta has come back through the broker."""
        users = self.users
        known = users.get(me["id"])
        if known is None:
            mine = me
        elif first:
            mine = {**known, **me}
        else:
            mine = {**known, "connections": int(known.get("connections") or 1) + 1}
        count = len(users) + (known is None)
        listed = [mine]
        if count > 1:
            for user_id, user in users.items():
                if len(listed) >= limit:
                    break
                if user_id != me["id"]:
                    listed.append(user)
        listed.sort(key=lambda u: str(u.get("id")))
        return {"presence": listed, "presence_count": count,
                "presence_truncated": len(listed) < count}
