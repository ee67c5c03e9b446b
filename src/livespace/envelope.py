"""What travels on the broker between nodes (pure).

Each message is one line of header and the frame's JSON, encoded once by the publisher
so that every node sends the same text to each of its connections:

- ``E<seq>\\n<frame>``: a durable event of the workspace's log;
- ``X<conn_id>\\n<frame>``: an ephemeral frame for every connection but ``conn_id``
  (empty: for all);
- ``T<conn_id>\\n<user_id>\\n<frame>``: an ephemeral frame for the connections of
  ``user_id`` only, but ``conn_id`` (user ids hold no control character);
- ``P<conn_id>\\n<frame>``: a presence frame (join, leave, update, diff), relayed like
  an ephemeral one; each node's room also applies it to its roster;
- ``N\\n<json>``: a user's tab count moved without a join or leave (``user_id``,
  ``delta``, the ``node`` it happened on): for the rosters only, not relayed;
- ``C\\n<json>``: a control message for the hubs (membership and role changes, with
  ``workspace_id``), on the node-wide :data:`CONTROL_CHANNEL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Durable:
    seq: int
    frame: bytes


@dataclass(frozen=True, slots=True)
class Ephemeral:
    exclude: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Direct:
    """An ephemeral frame for one user's connections (``broadcast`` with ``to``)."""

    user_id: str
    exclude: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Presence:
    exclude: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Tabs:
    user_id: str
    delta: int
    node: str


@dataclass(frozen=True, slots=True)
class Control:
    body: dict[str, Any]


Envelope = Durable | Ephemeral | Direct | Presence | Tabs | Control

#: Membership changes of every workspace, heard by every node (their membership caches).
CONTROL_CHANNEL = "members"


def channel(workspace_id: str) -> str:
    return f"ws:{workspace_id}"


def durable(seq: int, frame: bytes) -> bytes:
    return b"E%d\n%s" % (seq, frame)


def ephemeral(frame: bytes, exclude: str = "") -> bytes:
    return b"X%s\n%s" % (exclude.encode(), frame)


def direct(frame: bytes, user_id: str, exclude: str = "") -> bytes:
    return b"T%s\n%s\n%s" % (exclude.encode(), user_id.encode(), frame)


def presence(frame: bytes, exclude: str = "") -> bytes:
    return b"P%s\n%s" % (exclude.encode(), frame)


def tabs(user_id: str, delta: int, node: str) -> bytes:
    return b"N\n" + orjson.dumps({"user_id": user_id, "delta": delta, "node": node})


def control(body: dict[str, Any]) -> bytes:
    return b"C\n" + orjson.dumps(body)


def decode(message: bytes) -> Envelope | None:
    """The envelope in ``message``, or None when it is not one (ignored by the hub)."""
    head, sep, body = message.partition(b"\n")
    if not sep or not head:
        return None
    kind, rest = head[:1], head[1:]
    try:
        if kind == b"E":
            return Durable(int(rest), body)
        if kind == b"X":
            return Ephemeral(rest.decode(), body)
        if kind == b"T":
            user, sep, frame = body.partition(b"\n")
            return Direct(user.decode(), rest.decode(), frame) if sep and user else None
        if kind == b"P":
            return Presence(rest.decode(), body)
        if kind == b"N":
            obj = orjson.loads(body)
            if isinstance(obj, dict) and isinstance(obj.get("user_id"), str) and isinstance(
                    obj.get("delta"), int):
                return Tabs(obj["user_id"], obj["delta"], str(obj.get("node") or ""))
            return None
        if kind == b"C":
            obj = orjson.loads(body)
            return Control(obj) if isinstance(obj, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None
    return None
