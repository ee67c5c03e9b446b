"""The y-websocket wire protocol, encoded and decoded (pure: no I/O, no asyncio, no CRDT).

One binary WebSocket message is one protocol message (y-protocols, as the ``yjs`` +
``y-websocket`` npm packages speak it). Integers are lib0 variable-length unsigned
integers (7 bits a byte, least significant group first); byte strings and strings are
a length then the bytes (strings UTF-8):

- ``0 0 <state vector>``: sync step 1 ("here is what I have");
- ``0 1 <update>``: sync step 2 (the reply: what the other side lacks);
- ``0 2 <update>``: an update;
- ``1 <awareness update>``: awareness, itself ``count`` then ``count`` times
  ``client id, clock, state as JSON text`` (``null``: that client is gone);
- ``3``: query awareness (answered with every state known).

:func:`decode` is strict: a message with an unknown type, a truncated or overlong
integer, a length past its end, bytes left over after it, or awareness states that are
not JSON objects (or ``null``) raises :class:`Malformed`; the socket closes with
:data:`~livespace.codes.Close.MALFORMED`. Updates are not decoded here: the room
checks them with the CRDT library before storing them.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

SYNC = 0
AWARENESS = 1
AUTH = 2
QUERY_AWARENESS = 3

STEP1 = 0
STEP2 = 1
UPDATE = 2

#: lib0 integers are JavaScript numbers: at most 2**53 - 1 (8 bytes of 7 bits).
MAX_UINT = 2**53 - 1
_MAX_UINT_BYTES = 8
#: An awareness message carries at most this many client states.
MAX_AWARENESS_ENTRIES = 256
#: The empty update (no structs, empty delete set): "nothing new".
EMPTY_UPDATE = b"\x00\x00"


class Malformed(ValueError):
    """A message that is not valid y-websocket protocol."""


@dataclass(frozen=True, slots=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's awareness state; ``state`` is JSON text of an object, or None (gone)."""

    client_id: int
    clock: int
    state: str | None


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


Message = SyncStep1 | SyncStep2 | SyncUpdate | AwarenessUpdate | QueryAwareness


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        value = 0
        shift = 0
        data = self.data
        for _ in range(_MAX_UINT_BYTES):
            if self.pos >= len(data):
                raise Malformed("truncated integer")
            byte = data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if value > MAX_UINT:
                    raise Malformed("integer over 2**53 - 1")
                return value
            shift += 7
        raise Malformed("integer longer than 8 bytes")

    def chunk(self) -> bytes:
        length = self.uint()
        end = self.pos + length
        if end > len(self.data):
            raise Malformed("length past the end of the message")
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def text(self) -> str:
        try:
            return self.chunk().decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("string is not UTF-8") from None

    def end(self) -> None:
        if self.pos != len(self.data):
            raise Malformed(f"{len(self.data) - self.pos} bytes after the message")


def decode(message: bytes) -> Message:
    """The message in one binary frame; :class:`Malformed` if it is not one."""
    reader = _Reader(message)
    kind = reader.uint()
    out: Message
    if kind == SYNC:
        step = reader.uint()
        payload = reader.chunk()
        if step == STEP1:
            out = SyncStep1(payload)
        elif step == STEP2:
            out = SyncStep2(payload)
        elif step == UPDATE:
            out = SyncUpdate(payload)
        else:
            raise Malformed(f"unknown sync message type {step}")
    elif kind == AWARENESS:
        out = AwarenessUpdate(decode_awareness(reader.chunk()))
    elif kind == QUERY_AWARENESS:
        out = QueryAwareness()
    else:
        raise Malformed(f"unknown message type {kind}")
    reader.end()
    return out


def decode_awareness(payload: bytes) -> tuple[AwarenessEntry, ...]:
    """The entries of an awareness update; each state an object or ``null``."""
    reader = _Reader(payload)
    count = reader.uint()
    if count > MAX_AWARENESS_ENTRIES:
        raise Malformed(f"awareness update of {count} clients (at most {MAX_AWARENESS_ENTRIES})")
    entries = []
    for _ in range(count):
        client_id = reader.uint()
        clock = reader.uint()
        raw = reader.text()
        try:
            state = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Malformed("awareness state is not JSON") from None
        if state is not None and not isinstance(state, dict):
            raise Malformed("awareness state is neither an object nor null")
        entries.append(AwarenessEntry(client_id, clock, None if state is None else raw))
    reader.end()
    return tuple(entries)


# ---- encoding ---------------------------------------------------------------------------


def uint(value: int) -> bytes:
    if not 0 <= value <= MAX_UINT:
        raise ValueError(f"{value} is not a lib0 unsigned integer")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def chunk(data: bytes) -> bytes:
    return uint(len(data)) + data


def sync_step1(state_vector: bytes) -> bytes:
    return b"\x00\x00" + chunk(state_vector)


def sync_step2(update: bytes) -> bytes:
    return b"\x00\x01" + chunk(update)


def sync_update(update: bytes) -> bytes:
    return b"\x00\x02" + chunk(update)


def awareness_payload(entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> bytes:
    parts = [uint(len(entries))]
    for entry in entries:
        state = (entry.state if entry.state is not None else "null").encode()
        parts += (uint(entry.client_id), uint(entry.clock), chunk(state))
    return b"".join(parts)


def awareness(entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> bytes:
    return b"\x01" + chunk(awareness_payload(entries))


def query_awareness() -> bytes:
    return b"\x03"


def encode(message: Message) -> bytes:
    """The frame of ``message`` (the inverse of :func:`decode`)."""
    match message:
        case SyncStep1():
            return sync_step1(message.state_vector)
        case SyncStep2():
            return sync_step2(message.update)
        case SyncUpdate():
            return sync_update(message.update)
        case AwarenessUpdate():
            return awareness(message.entries)
        case QueryAwareness():
            return query_awareness()
