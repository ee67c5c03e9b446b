"""The y-websocket encoding, checked against pycrdt's encoder and fuzzed (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import (
    Doc,
    Text,
    create_awareness_message,
    create_sync_message,
    create_update_message,
)

from livespace.notes import ywire
from livespace.notes.ywire import AwarenessEntry, Malformed


def test_decodes_what_pycrdt_encodes() -> None:
    doc: Doc[Any] = Doc()
    doc.get("body", type=Text).insert(0, "héllo")
    step1 = ywire.decode(create_sync_message(doc))
    assert step1 == ywire.SyncStep1(doc.get_state())
    update = doc.get_update()
    assert ywire.decode(create_update_message(update)) == ywire.SyncUpdate(update)
    assert ywire.decode(ywire.sync_step2(update)) == ywire.SyncStep2(update)
    payload = ywire.awareness_payload([AwarenessEntry(7, 3, '{"user":{"name":"Ada"}}'),
                                       AwarenessEntry(8, 1, None)])
    assert ywire.decode(create_awareness_message(payload)) == ywire.AwarenessUpdate((
        AwarenessEntry(7, 3, '{"user":{"name":"Ada"}}'), AwarenessEntry(8, 1, None)))
    assert ywire.decode(b"\x03") == ywire.QueryAwareness()


def test_round_trip_and_integers() -> None:
    for n in (0, 1, 127, 128, 300, 2**32, 2**53 - 1):
        assert ywire._Reader(ywire.uint(n)).uint() == n
    with pytest.raises(ValueError):
        ywire.uint(2**53)
    message = ywire.SyncUpdate(b"\x01\x02")
    assert ywire.decode(ywire.encode(message)) == message


@pytest.mark.parametrize("frame", [
    b"",  # nothing
    b"\x00",  # sync without its type
    b"\x00\x03\x00",  # unknown sync type
    b"\x00\x02\x05ab",  # length past the end
    b"\x00\x02\x01ab",  # bytes after the message
    b"\x02\x00",  # auth: not from clients
    b"\x09",  # unknown type
    b"\x03\x00",  # query with a tail
    b"\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # integer over 8 bytes
    b"\xff\xff\xff\xff\xff\xff\xff\x7f",  # integer over 2**53
    b"\x01\x05\x01\x07\x01\x01[",  # awareness state not JSON
    b"\x01\x06\x01\x07\x01\x02[]",  # awareness state not an object
    b"\x01\x06\x01\x07\x01\x02\xff\xfe",  # not UTF-8
])
def test_malformed(frame: bytes) -> None:
    with pytest.raises(Malformed):
        ywire.decode(frame)


def test_too_many_awareness_entries() -> None:
    entries = [AwarenessEntry(n, 1, None) for n in range(ywire.MAX_AWARENESS_ENTRIES + 1)]
    with pytest.raises(Malformed):
        ywire.decode(ywire.awareness(entries))


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64))
def test_decode_never_raises_anything_but_malformed(frame: bytes) -> None:
    try:
        message = ywire.decode(frame)
    except Malformed:
        return
    assert ywire.decode(ywire.encode(message)) == message


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(
    st.integers(0, 2**53 - 1), st.integers(0, 2**53 - 1),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.integers(-1000, 1000),
                                         max_size=3)),
), max_size=5), st.integers(0, 40), st.binary(max_size=4))
def test_mutated_awareness_messages(entries: list[tuple[int, int, dict[str, int] | None]],
                                    cut: int, junk: bytes) -> None:
    import orjson

    good = [AwarenessEntry(c, k, None if s is None else orjson.dumps(s).decode())
            for c, k, s in entries]
    frame = ywire.awareness(good)
    assert ywire.decode(frame) == ywire.AwarenessUpdate(tuple(good))
    for bad in (frame[:cut] if cut < len(frame) else frame + b"\x00", frame + junk):
        if bad == frame:
            continue
        with pytest.raises(Malformed):
            ywire.decode(bad)
