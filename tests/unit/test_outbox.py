"""The bounded outbox and the broker envelope (pure): bounds, ephemeral-first dropping,
and properties over random operation sequences."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from livespace import envelope
from livespace.outbox import Outbox, Push


def frames_of(box: Outbox) -> list[bytes]:
    return box.take(max_bytes=1 << 30) if box else []


def test_frames_come_out_in_order_within_a_take_budget() -> None:
    box = Outbox(max_bytes=1000, max_frames=10)
    for i in range(5):
        assert box.push(b"%d" % i * 10, durable=i % 2 == 0) is Push.QUEUED
    assert len(box) == 5 and box.bytes == 50 and box.ephemeral == 2
    assert box.take(max_bytes=25) == [b"0" * 10, b"1" * 10]
    assert box.take(max_bytes=1) == [b"2" * 10]  # at least one, whatever the budget
    assert box.take() == [b"3" * 10, b"4" * 10]
    assert box.bytes == 0 and box.ephemeral == 0 and box.ephemeral_bytes == 0


def test_an_ephemeral_frame_that_does_not_fit_is_dropped() -> None:
    box = Outbox(max_bytes=100, max_frames=10)
    assert box.push(b"d" * 90, durable=True) is Push.QUEUED
    assert box.push(b"e" * 20, durable=False) is Push.DROPPED
    assert box.dropped == 1 and frames_of(box) == [b"d" * 90]


def test_a_durable_frame_makes_room_by_dropping_ephemeral_ones_oldest_first() -> None:
    box = Outbox(max_bytes=100, max_frames=10)
    box.push(b"e1" * 10, durable=False)  # 20 bytes
    box.push(b"d1" * 10, durable=True)
    box.push(b"e2" * 10, durable=False)
    box.push(b"e3" * 10, durable=False)
    # 80 queued; a 50-byte durable frame needs 30 more: e1 and e2 go, e3 stays
    assert box.push(b"D" * 50, durable=True) is Push.QUEUED
    assert box.dropped == 2
    assert frames_of(box) == [b"d1" * 10, b"e3" * 10, b"D" * 50]


def test_durable_frames_past_the_bound_overflow_and_change_nothing() -> None:
    box = Outbox(max_bytes=100, max_frames=10)
    box.push(b"d" * 60, durable=True)
    box.push(b"e" * 30, durable=False)
    assert box.push(b"D" * 50, durable=True) is Push.OVERFLOW  # even without e: 110 > 100
    assert box.dropped == 0 and box.bytes == 90 and len(box) == 2


def test_the_frame_count_is_bounded_too() -> None:
    box = Outbox(max_bytes=1 << 20, max_frames=3)
    box.push(b"a", durable=False)
    box.push(b"b", durable=True)
    box.push(b"c", durable=True)
    assert box.push(b"x", durable=False) is Push.DROPPED
    assert box.push(b"d", durable=True) is Push.QUEUED  # "a" made way
    assert box.push(b"e", durable=True) is Push.OVERFLOW
    assert frames_of(box) == [b"b", b"c", b"d"]


def test_clear_forgets_everything() -> None:
    box = Outbox(max_bytes=100, max_frames=10)
    box.push(b"x" * 10, durable=False)
    box.push(b"y" * 10, durable=True)
    box.clear()
    assert len(box) == 0 and box.bytes == box.ephemeral == box.ephemeral_bytes == 0
    assert box.push(b"z" * 100, durable=True) is Push.QUEUED


ops = st.lists(st.one_of(
    st.tuples(st.just("push"), st.integers(1, 60), st.booleans()),
    st.tuples(st.just("take"), st.integers(1, 200), st.just(False)),
), max_size=80)


@settings(max_examples=300, deadline=None)
@given(ops, st.integers(50, 300), st.integers(1, 12))
def test_bounds_and_durable_order_hold_for_any_sequence(seq: list[tuple[str, int, bool]],
                                                       max_bytes: int, max_frames: int) -> None:
    """A model of what must hold: the bounds always; every durable frame that was
    QUEUED comes out, in order; an ephemeral frame is dropped only when something did
    not fit; OVERFLOW only when the durable frames alone leave no room."""
    box = Outbox(max_bytes, max_frames)
    expected_durable: list[bytes] = []
    out: list[bytes] = []
    for n, (op, size, durable) in enumerate(seq):
        if op == "push":
            payload = b"%c" % (65 + n % 26) + b"%05d" % n + b"." * size
            durable_bytes = box.bytes - box.ephemeral_bytes
            durable_count = len(box) - box.ephemeral
            result = box.push(payload, durable)
            if result is Push.QUEUED and durable:
                expected_durable.append(payload)
            if result is Push.OVERFLOW:
                assert durable
                assert (durable_bytes + len(payload) > max_bytes
                        or durable_count + 1 > max_frames)
            if durable and result is not Push.OVERFLOW:
                assert result is Push.QUEUED
        else:
            out += box.take(size) if box else []
        assert len(box) <= max_frames and box.bytes <= max_bytes
        assert 0 <= box.ephemeral <= len(box) and 0 <= box.ephemeral_bytes <= box.bytes
    out += frames_of(box)
    assert [f for f in out if f in set(expected_durable)] == expected_durable


# ---- envelope --------------------------------------------------------------------------


def test_envelopes_round_trip() -> None:
    frame = b'{"type":"contact_created","seq":7}'
    durable = envelope.decode(envelope.durable(7, frame))
    assert isinstance(durable, envelope.Durable) and durable.seq == 7
    assert bytes(durable.frame) == frame
    eph = envelope.decode(envelope.ephemeral(b'{"type":"typing"}', "conn1"))
    assert isinstance(eph, envelope.Ephemeral) and eph.exclude == "conn1"
    assert bytes(eph.frame) == b'{"type":"typing"}'
    control = envelope.decode(envelope.control({"kind": "member_removed", "user_id": "bob"}))
    assert control == envelope.Control({"kind": "member_removed", "user_id": "bob"})
    assert envelope.channel("w1") == "ws:w1"
    direct = envelope.decode(envelope.direct(b'{"type":"broadcast"}', "bob@x y", "conn1"))
    assert direct == envelope.Direct("bob@x y", "conn1", b'{"type":"broadcast"}')


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_any_broker_message_decodes_to_an_envelope_or_none(message: bytes) -> None:
    item = envelope.decode(message)
    assert item is None or isinstance(item, envelope.Durable | envelope.Ephemeral
                                      | envelope.Direct | envelope.Presence | envelope.Tabs
                                      | envelope.Control)


def test_malformed_broker_messages_are_ignored() -> None:
    for message in (b"", b"E\n{}", b"Eabc\n{}", b"no newline", b"C\n[1]", b"C\n{oops",
                    b"X\xff\xfe\n{}", b"Q1\n{}", b"T\n{}", b"Tc1\n\n{}", b"N\n{}", b"N\n[1]",
                    b'N\n{"user_id": "u", "delta": "1"}'):
        assert envelope.decode(message) is None, message
