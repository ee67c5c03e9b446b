"""What a note's rooms say to each other across nodes, on the broker (pure).

One broker channel per note, ``note:<workspace>:<note>``, subscribed only by nodes with
a client of that note. Each message is a header line naming the sending process
(``instance``: a node ignores its own), then a binary body:

- ``U<instance> <id>\\n<update>``: a document update, stored with ``id``;
- ``A<instance>\\n<awareness update>``: awareness states of the sender's clients;
- ``Q<instance>\\n``: "I just opened this note: send me your clients' states".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Update:
    instance: str
    id: int
    update: bytes


@dataclass(frozen=True, slots=True)
class Awareness:
    instance: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Query:
    instance: str


Relayed = Update | Awareness | Query


def channel(workspace_id: str, note_id: str) -> str:
    return f"note:{workspace_id}:{note_id}"


def update(instance: str, update_id: int, data: bytes) -> bytes:
    return b"U%s %d\n%s" % (instance.encode(), update_id, data)


def awareness(instance: str, payload: bytes) -> bytes:
    return b"A%s\n%s" % (instance.encode(), payload)


def query(instance: str) -> bytes:
    return b"Q%s\n" % instance.encode()


def decode(message: bytes) -> Relayed | None:
    """The relayed message, or None when ``message`` is not one (ignored)."""
    head, sep, body = message.partition(b"\n")
    if not sep or not head:
        return None
    kind, rest = head[:1], head[1:]
    try:
        if kind == b"U":
            instance, _, raw_id = rest.partition(b" ")
            return Update(instance.decode(), int(raw_id), body)
        if kind == b"A":
            return Awareness(rest.decode(), body)
        if kind == b"Q":
            return Query(rest.decode())
    except (ValueError, UnicodeDecodeError):
        return None
    return None
