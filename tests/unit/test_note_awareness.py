"""Awareness states of a note: clock rules, ownership, removal, remote expiry (pure)."""

from __future__ import annotations

import orjson

from livespace.notes.awareness import (
    MAX_CLIENTS_PER_CONNECTION,
    REMOTE_TTL_S,
    AwarenessTable,
    stamp,
)
from livespace.notes.ywire import AwarenessEntry as E


def test_clock_rules_and_removal_on_close() -> None:
    table = AwarenessTable()
    assert table.apply([E(1, 1, '{"a":1}')], "c1", 0.0) == [E(1, 1, '{"a":1}')]
    assert table.apply([E(1, 1, '{"a":2}')], "c1", 0.0) == []  # same clock: stale
    assert table.apply([E(1, 2, '{"a":2}')], "c1", 0.0) == [E(1, 2, '{"a":2}')]
    assert table.states(0.0) == [E(1, 2, '{"a":2}')]
    assert table.drop("c1") == [E(1, 3, None)]
    assert table.states(0.0) == []


def test_no_one_changes_another_connections_state() -> None:
    table = AwarenessTable()
    table.apply([E(1, 1, '{"a":1}')], "c1", 0.0)
    assert table.apply([E(1, 9, None)], "c2", 0.0) == []
    assert table.apply([E(1, 9, '{"fake":1}')], "c2", 0.0) == []
    many = [E(10 + n, 1, "{}") for n in range(MAX_CLIENTS_PER_CONNECTION + 2)]
    assert len(table.apply(many, "c2", 0.0)) == MAX_CLIENTS_PER_CONNECTION
    assert table.drop("c3") == []


def test_remote_states_expire_from_reports() -> None:
    table = AwarenessTable()
    table.apply([E(5, 1, "{}")], "node:other", 0.0)
    table.apply([E(6, 1, "{}")], "c1", 0.0)
    assert len(table.states(1.0)) == 2
    assert table.states(REMOTE_TTL_S + 1) == [E(6, 1, "{}")]
    assert table.local_states() == [E(6, 1, "{}")]
    # a client that moved to this node takes its state over with a newer clock
    assert table.apply([E(5, 2, '{"x":1}')], "c2", 2.0) == [E(5, 2, '{"x":1}')]


def test_stamp_puts_the_token_user_in() -> None:
    state = '{"user":{"name":"Fake","id":"root","color":"#ff0000"},"cursor":{"anchor":1}}'
    out = orjson.loads(stamp(state, "alice", "Alice"))
    assert out == {"user": {"id": "alice", "name": "Alice", "color": "#ff0000"},
                   "cursor": {"anchor": 1}}
    out = orjson.loads(stamp('{"user":{"color":' + '"x"' * 0 + '1}}', "bob", None))
    assert out == {"user": {"id": "bob", "name": "bob"}}
