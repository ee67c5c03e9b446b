"""What travels on the broker between nodes (pure).

Each message is one line of header and the frame's JSON, encoded once by the publisher
so that every node sends the same text to each of its connections:

- ``E<seq>\\n<frame>``: a durable event of the workspace's log;
- ``X<conn_id>\\n<frame>``: an ephemeral frame for every connection but ``conn_id``
  (empty: for all);
- ``T<conn_id>\\n<user_id>\\n<frame>``: an ephemeral frame for the connections of
  ``user_id`` only, but ``conn_id`` (user ids hold no control character);
- ``C\\n<json>``: a control message for the hubs (membership and role changes).
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
class Control:
    body: dict[str, Any]


Envelope = Durable | Ephemeral | Direct | Control


def channel(workspace_id: str) -> str:
    return f"ws:{workspace_id}"


def durable(seq: int, frame: bytes) -> bytes:
    return b"E%d\n%s" % (seq, frame)


def ephemeral(frame: bytes, exclude: str = "") -> bytes:
    return b"X%s\n%s" % (exclude.encode(), frame)


def direct(frame: bytes, user_id: str, exclude: str = "") -> bytes:
    return b"T%s\n%s\n%s" % (exclude.encode(), user_id.encode(), frame)


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
        if kind == b"C":
            obj = orjson.loads(body)
            return Control(obj) if isinstance(obj, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None
    return None
