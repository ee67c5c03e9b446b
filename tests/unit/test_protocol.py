"""The pure protocol core: every client frame type, its limits, and properties that hold
for any input (hypothesis): a list of valid frames or errors comes back, never an exception."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livespace import commands as c
from livespace import protocol as p
from livespace import validation as v
from livespace.codes import Error


def one(raw: str | bytes, *, batch: bool = False) -> p.Frame | p.FrameError:
    items = p.parse(raw, batch=batch)
    assert len(items) == 1
    return items[0]


def frame(type_: str, data: Any = None, ref: str | None = "r1") -> p.Frame | p.FrameError:
    obj: dict[str, Any] = {"type": type_}
    if ref is not None:
        obj["ref"] = ref
    if data is not None:
        obj["data"] = data
    return one(json.dumps(obj))


def ok(type_: str, data: Any = None) -> p.Body:
    item = frame(type_, data)
    assert isinstance(item, p.Frame), (item.code, item.message)
    assert item.type == type_ and item.ref == "r1"
    return item.body


def refused(type_: str, data: Any, field: str, code: Error = Error.VALIDATION_FAILED) -> str:
    """The frame is answered with ``code`` naming ``field``, echoing the ref; the reason."""
    item = frame(type_, data)
    assert isinstance(item, p.FrameError), item
    assert item.code is code and item.ref == "r1"
    details = item.details
    assert isinstance(details, dict)
    assert details == {"field": field, "reason": details["reason"]}
    return str(details["reason"])


# ---- every frame type, valid ------------------------------------------------------------


def test_valid_frames_of_every_type() -> None:
    assert ok("ping") == p.Ping()
    assert ok("ack", {"seq": 7}) == p.Ack(7)
    assert ok("refresh", {"token": "a.b.c"}) == p.Refresh("a.b.c")
    created = ok("contact_created", {"name": " Ada ", "email": "ada@x.org", "phone": "1",
                                     "company": "AE", "tags": ["vip", "vip", "b"],
                                     "fields": {"score": 3, "ok": True, "n": None, "x": 1.5}})
    assert created == c.CreateContact("Ada", "ada@x.org", "1", "AE", ("vip", "b"),
                                      {"score": 3, "ok": True, "n": None, "x": 1.5})
    assert ok("contact_updated", {"id": "c1", "changes": {"phone": None}, "base_version": 2}) \
        == c.UpdateContact("c1", {"phone": None}, 2)
    assert ok("contact_deleted", {"id": "c1"}) == c.DeleteContact("c1")
    assert ok("note_added", {"contact_id": "c1", "body": "hi"}) == c.AddNote("c1", "hi")
    assert ok("typing", {"contact_id": "c1", "is_typing": False}) == p.Typing("c1", False)
    assert ok("presence_update", {"status": "away", "viewing": None}) == \
        p.PresenceUpdate("away", None, True)
    assert ok("presence_update", {"viewing": "c1"}) == p.PresenceUpdate(None, "c1", True)
    assert ok("broadcast", {"event": "cursor", "payload": {"x": [1, 2]}, "echo": True}) == \
        p.Broadcast("cursor", {"x": [1, 2]}, True)
    assert ok("broadcast", {"event": "e"}) == p.Broadcast("e", {}, False)
    assert ok("broadcast", {"event": "offer", "to": "bob@x.org"}) == \
        p.Broadcast("offer", {}, False, "bob@x.org")
    assert ok("presence_update", {"status": "in_call", "call": "c-1"}) == \
        p.PresenceUpdate("in_call", None, False, "c-1")
    assert ok("presence_update", {"status": "in_call"}) == p.PresenceUpdate("in_call", None, False)


def test_limits_at_the_edge_are_accepted() -> None:
    ok("contact_created", {"name": "n" * v.MAX_NAME, "tags": ["t" * v.MAX_TAG] * 1,
                           "fields": {f"k{i}": "v" * v.MAX_FIELD_VALUE
                                      for i in range(v.MAX_FIELDS)}})
    ok("contact_created", {"name": "n", "tags": [f"t{i}" for i in range(v.MAX_TAGS)]})
    ok("note_added", {"contact_id": "c" * v.MAX_ID, "body": "b" * v.MAX_NOTE})
    ok("broadcast", {"event": "e" * p.MAX_EVENT_NAME,
                     "payload": {"b": "x" * (p.MAX_BROADCAST_PAYLOAD - 8)}})
    ok("ack", {"seq": v.MAX_SAFE_INT})
    ok("contact_created", {"name": "n", "fields": {"big": -v.MAX_SAFE_INT, "f": 1e15}})
    assert isinstance(frame("ping", ref="r" * p.MAX_REF), p.Frame)


# ---- every frame type, refused with precise details -----------------------------------------


@pytest.mark.parametrize(("type_", "data", "field"), [
    ("ack", {}, "seq"),
    ("ack", {"seq": -1}, "seq"),
    ("ack", {"seq": 1.0}, "seq"),
    ("ack", {"seq": True}, "seq"),
    ("ack", {"seq": 2**53}, "seq"),
    ("refresh", {"token": ""}, "token"),
    ("refresh", {"token": "t" * (v.MAX_TOKEN + 1)}, "token"),
    ("refresh", {"token": 5}, "token"),
    ("contact_created", {}, "name"),
    ("contact_created", {"name": "   "}, "name"),
    ("contact_created", {"name": "n" * (v.MAX_NAME + 1)}, "name"),
    ("contact_created", {"name": "a\x00b"}, "name"),
    ("contact_created", {"name": ["x"]}, "name"),
    ("contact_created", {"name": "x", "email": "not-an-email"}, "email"),
    ("contact_created", {"name": "x", "email": "a\x00@b.c"}, "email"),
    ("contact_created", {"name": "x", "phone": "1" * (v.MAX_PHONE + 1)}, "phone"),
    ("contact_created", {"name": "x", "phone": 123}, "phone"),
    ("contact_created", {"name": "x", "company": "c\x00"}, "company"),
    ("contact_created", {"name": "x", "tags": "vip"}, "tags"),
    ("contact_created", {"name": "x", "tags": ["t"] * (v.MAX_TAGS + 1)}, "tags"),
    ("contact_created", {"name": "x", "tags": ["ok", ""]}, "tags[1]"),
    ("contact_created", {"name": "x", "tags": ["t" * (v.MAX_TAG + 1)]}, "tags[0]"),
    ("contact_created", {"name": "x", "fields": []}, "fields"),
    ("contact_created", {"name": "x", "fields": {f"k{i}": 1 for i in range(51)}}, "fields"),
    ("contact_created", {"name": "x", "fields": {"k" * 65: 1}}, "fields"),
    ("contact_created", {"name": "x", "fields": {"": 1}}, "fields"),
    ("contact_created", {"name": "x", "fields": {"k\x00": 1}}, "fields"),
    ("contact_created", {"name": "x", "fields": {"k": "v" * 2001}}, "fields.k"),
    ("contact_created", {"name": "x", "fields": {"k": "v\x00"}}, "fields.k"),
    ("contact_created", {"name": "x", "fields": {"k": {"nested": 1}}}, "fields.k"),
    ("contact_created", {"name": "x", "fields": {"k": [1]}}, "fields.k"),
    ("contact_created", {"name": "x", "fields": {"k": 2**53}}, "fields.k"),
    ("contact_created", {"name": "x", "fields": {"k": 1e300}}, "fields.k"),
    ("contact_created", {"name": "x", "shoe_size": 44}, "data.shoe_size"),
    ("contact_updated", {"changes": {"name": "x"}}, "id"),
    ("contact_updated", {"id": "c" * 65, "changes": {"name": "x"}}, "id"),
    ("contact_updated", {"id": "../etc", "changes": {"name": "x"}}, "id"),
    ("contact_updated", {"id": "c1"}, "changes"),
    ("contact_updated", {"id": "c1", "changes": {}}, "changes"),
    ("contact_updated", {"id": "c1", "changes": "x"}, "changes"),
    ("contact_updated", {"id": "c1", "changes": {"name": None}}, "name"),
    ("contact_updated", {"id": "c1", "changes": {"id": "c2"}}, "changes.id"),
    ("contact_updated", {"id": "c1", "changes": {"name": "x"}, "base_version": 0},
     "base_version"),
    ("contact_updated", {"id": "c1", "changes": {"name": "x"}, "base_version": "1"},
     "base_version"),
    ("contact_updated", {"id": "c1", "changes": {"name": "x"}, "force": True}, "data.force"),
    ("contact_deleted", {}, "id"),
    ("contact_deleted", {"id": 5}, "id"),
    ("contact_deleted", {"id": "c1", "hard": True}, "data.hard"),
    ("note_added", {"contact_id": "c1"}, "body"),
    ("note_added", {"contact_id": "c1", "body": "b" * (v.MAX_NOTE + 1)}, "body"),
    ("note_added", {"contact_id": "c1", "body": " "}, "body"),
    ("note_added", {"body": "x"}, "contact_id"),
    ("note_added", {"contact_id": "", "body": "x"}, "contact_id"),
    ("note_added", {"contact_id": "c1", "body": "x", "pinned": 1}, "data.pinned"),
    ("typing", {}, "contact_id"),
    ("typing", {"contact_id": "c1", "is_typing": "yes"}, "is_typing"),
    ("typing", {"contact_id": "c1", "is_typing": 1}, "is_typing"),
    ("typing", {"contact_id": "c1", "x": 1}, "data.x"),
    ("presence_update", {}, "status"),
    ("presence_update", {"status": "asleep"}, "status"),
    ("presence_update", {"status": ["online"]}, "status"),
    ("presence_update", {"viewing": "x y"}, "viewing"),
    ("presence_update", {"status": "online", "mood": "ok"}, "data.mood"),
    ("presence_update", {"status": "online", "call": "c1"}, "call"),
    ("presence_update", {"status": "in_call", "call": "x y"}, "call"),
    ("presence_update", {"status": "in_call", "call": "c" * 65}, "call"),
    ("broadcast", {}, "event"),
    ("broadcast", {"event": "e", "to": ""}, "to"),
    ("broadcast", {"event": "e", "to": "u" * 65}, "to"),
    ("broadcast", {"event": "e", "to": "a\nb"}, "to"),
    ("broadcast", {"event": "e", "to": 7}, "to"),
    ("broadcast", {"event": "e" * 65}, "event"),
    ("broadcast", {"event": "e", "payload": [1]}, "payload"),
    ("broadcast", {"event": "e", "payload": {"b": "x" * p.MAX_BROADCAST_PAYLOAD}}, "payload"),
    ("broadcast", {"event": "e", "echo": "yes"}, "echo"),
    ("broadcast", {"event": "e", "payload": {"x": 1e300}}, "payload.x"),
    ("broadcast", {"event": "e", "payload": {"x": [0, -2**60]}}, "payload.x[1]"),
    ("ping", {"x": 1}, "data.x"),
])
def test_invalid_data_is_validation_failed_naming_the_field(type_: str, data: Any,
                                                            field: str) -> None:
    assert refused(type_, data, field)


def test_nesting_depth_is_bounded() -> None:
    def nest(depth: int) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for _ in range(depth):
            value = {"a": value}
        return value

    ok("broadcast", {"event": "e", "payload": nest(v.MAX_DEPTH - 1)})
    reason = refused("broadcast", {"event": "e", "payload": nest(v.MAX_DEPTH)},
                     "payload" + ".a" * v.MAX_DEPTH)
    assert reason == f"nested deeper than {v.MAX_DEPTH}"
    deep = "[" * 5000 + "]" * 5000  # deeper than the JSON parser goes: not JSON to us
    item = one('{"type":"broadcast","ref":"r","data":{"event":"e","payload":{"x":' + deep + "}}}")
    assert isinstance(item, p.FrameError) and item.code is Error.INVALID_JSON


@pytest.mark.parametrize(("literal", "reason"), [
    ("1e400", "must be a finite number"),
    ("-1e400", "must be a finite number"),
    ("1" + "0" * 400, "must be within +/-(2**53-1)"),
    ("-" + "9" * 5000, "must be within +/-(2**53-1)"),
    ("18446744073709551616", "must be within +/-(2**53-1)"),  # past 64 bits
    ("9223372036854775808", "must be within +/-(2**53-1)"),
    (str(2**53), "must be within +/-(2**53-1)"),
    ("9007199254740993.0", "must be within +/-(2**53-1)"),
])
def test_numbers_out_of_range_name_the_field_and_keep_the_ref(literal: str, reason: str) -> None:
    raw = ('{"type":"contact_created","ref":"r9","data":{"name":"x","fields":{"n":'
           + literal + "}}}")
    item = one(raw)
    assert isinstance(item, p.FrameError) and item.code is Error.VALIDATION_FAILED
    assert item.ref == "r9" and item.details == {"field": "fields.n", "reason": reason}


@pytest.mark.parametrize("raw", [
    '{"type":"ping","data":{"n":NaN}}',
    '{"type":"ping","data":{"n":Infinity}}',
    '{"type":"ping","data":{"n":-Infinity}}',
    '{"type":"ping","data":{"n":1e400,"s":"\\ud800"}}',  # a lone surrogate after a huge number
    '{"type":"ping","data":{"n":1e400,"m":NaN}}',
    '{"type":"ping","data":{"n":1e400}',
    '{"type":"ping"} trailing',
    "",
    "   ",
    b"\xff\xfe{}",
    b'{"type":"ping","ref":"\xc3\x28"}',
    '{"type":"ping","ref":"\\ud800"}',
])
def test_not_json_is_invalid_json(raw: str | bytes) -> None:
    item = one(raw)
    assert isinstance(item, p.FrameError) and item.code is Error.INVALID_JSON and item.ref is None


@pytest.mark.parametrize(("raw", "code", "ref"), [
    ("[1, 2]", Error.INVALID_MESSAGE, None),
    ('"ping"', Error.INVALID_MESSAGE, None),
    ("null", Error.INVALID_MESSAGE, None),
    ('{"ref":"a"}', Error.INVALID_MESSAGE, "a"),
    ('{"type":7,"ref":"a"}', Error.INVALID_MESSAGE, "a"),
    ('{"type":"ping","ref":""}', Error.INVALID_MESSAGE, None),
    ('{"type":"ping","ref":"' + "r" * 65 + '"}', Error.INVALID_MESSAGE, None),
    ('{"type":"ping","ref":5}', Error.INVALID_MESSAGE, None),
    ('{"type":"ping","ref":"a\\u0000"}', Error.INVALID_MESSAGE, None),
    ('{"type":"ping","ref":"a","extra":1}', Error.INVALID_MESSAGE, "a"),
    ('{"type":"ping","ref":"a","data":[]}', Error.INVALID_MESSAGE, "a"),
    ('{"type":"ping","ref":"a","data":"x"}', Error.INVALID_MESSAGE, "a"),
    ('{"type":"teleport","ref":"a"}', Error.UNKNOWN_TYPE, "a"),
    ('{"type":"' + "t" * 5000 + '"}', Error.UNKNOWN_TYPE, None),
])
def test_malformed_frames(raw: str, code: Error, ref: str | None) -> None:
    item = one(raw)
    assert isinstance(item, p.FrameError) and item.code is code and item.ref == ref
    assert len(item.message) < 200


def test_batches() -> None:
    items = p.parse('[{"type":"ping","ref":"a"},{"type":"nope","ref":"b"},5]', batch=True)
    assert isinstance(items[0], p.Frame) and items[0].ref == "a"
    assert isinstance(items[1], p.FrameError) and items[1].code is Error.UNKNOWN_TYPE
    assert isinstance(items[2], p.FrameError) and items[2].code is Error.INVALID_MESSAGE
    assert len(p.parse(json.dumps([{"type": "ping"}] * p.MAX_BATCH), batch=True)) == p.MAX_BATCH
    for raw in ("[]", json.dumps([{"type": "ping"}] * (p.MAX_BATCH + 1))):
        item = one(raw, batch=True)
        assert isinstance(item, p.FrameError) and item.code is Error.INVALID_MESSAGE
    single = one('{"type":"ping"}', batch=True)  # a batch client may still send one object
    assert isinstance(single, p.Frame)


def test_server_frames() -> None:
    problem = v.invalid("name", "required")
    assert p.error_frame(problem, "r") == {
        "type": "error", "code": "validation_failed", "message": "name: required", "ref": "r",
        "details": {"field": "name", "reason": "required"}}
    assert p.ack_frame("r", 3, {"id": "c"}) == {"type": "ack", "ref": "r", "seq": 3,
                                                "data": {"id": "c"}}
    pong = p.pong_frame("r")
    assert pong["type"] == "pong" and pong["ref"] == "r" and pong["ts"].endswith("Z")


# ---- properties: any input -> frames or errors, never an exception ----------------------------

TYPES = sorted(p.VALIDATORS)

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats()
    | st.text(max_size=30) | st.sampled_from(["", "\x00", "a" * 300, "c1", "online", "vip"])
)
KEYS = (*c.CONTACT_FIELDS, "id", "changes", "contact_id", "body", "event", "payload", "status",
        "viewing", "is_typing", "echo", "seq", "token", "base_version")
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=10) | st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=16,
)


def check(items: list[p.Frame | p.FrameError]) -> None:
    """What every parse result must be: frames whose bodies are storable, or answerable
    errors with a known code."""
    assert isinstance(items, list) and items
    for item in items:
        if isinstance(item, p.FrameError):
            assert isinstance(item.code, Error)
            assert item.ref is None or (isinstance(item.ref, str) and 1 <= len(item.ref) <= 64)
            encoded = orjson.dumps(p.error_frame(item, item.ref))  # always encodable
            assert len(encoded) < 4096
        else:
            assert isinstance(item, p.Frame) and item.type in p.VALIDATORS
            assert type(item.body).__name__ and storable(item.body)


def storable(body: p.Body) -> bool:
    """Every value in a valid body can be encoded as JSON and stored (no NUL, no surrogate,
    no out-of-range number)."""
    values = [getattr(body, name) for name in body.__slots__]
    text = orjson.dumps(values).decode()
    if not isinstance(body, p.Broadcast):
        assert "\\u0000" not in text
    for value in json.loads(text, parse_float=float):
        walk(value)
    return True


def walk(value: Any) -> None:
    if isinstance(value, dict):
        for item in value.values():
            walk(item)
    elif isinstance(value, list):
        for item in value:
            walk(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        assert math.isfinite(value) and abs(value) <= v.MAX_SAFE_INT


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes(raw: bytes, batch: bool) -> None:
    check(p.parse(raw, batch=batch))


@settings(max_examples=400)
@given(st.text(alphabet=st.characters(codec=None), max_size=200), st.booleans())
def test_any_text_including_surrogates(raw: str, batch: bool) -> None:
    check(p.parse(raw, batch=batch))


def dump(value: Any) -> str:
    """JSON text, NaN and huge numbers included (the way a hostile client writes them)."""
    return json.dumps(value, allow_nan=True)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_any_json_value(value: Any, batch: bool) -> None:
    check(p.parse(dump(value), batch=batch))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(TYPES), st.one_of(st.none(), st.text(max_size=70), st.integers()),
       json_values)
def test_frame_shaped_values(type_: str, ref: Any, data: Any) -> None:
    obj = {"type": type_, "data": data}
    if ref is not None:
        obj["ref"] = ref
    check(p.parse(dump(obj)))
    check(p.parse(dump([obj, obj]), batch=True))


VALID: list[dict[str, Any]] = [
    {"type": "ping"},
    {"type": "ack", "data": {"seq": 3}},
    {"type": "refresh", "data": {"token": "a.b.c"}},
    {"type": "contact_created", "data": {"name": "Ada", "email": "a@b.c", "tags": ["x"],
                                         "fields": {"n": 1, "s": "v"}}},
    {"type": "contact_updated", "data": {"id": "c1", "changes": {"company": "Co"},
                                         "base_version": 1}},
    {"type": "contact_deleted", "data": {"id": "c1"}},
    {"type": "note_added", "data": {"contact_id": "c1", "body": "hello"}},
    {"type": "typing", "data": {"contact_id": "c1", "is_typing": True}},
    {"type": "presence_update", "data": {"status": "busy", "viewing": "c1"}},
    {"type": "broadcast", "data": {"event": "cursor", "payload": {"x": 1, "y": [2.5]}}},
]


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid frame with a few random changes: a key dropped, a value replaced or added."""
    obj: Any = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    for _ in range(draw(st.integers(1, 4))):
        holders = [obj] + ([obj["data"]] if isinstance(obj.get("data"), dict) else [])
        holder = draw(st.sampled_from(holders))
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        keys = sorted(holder)
        if action == "drop" and keys:
            del holder[draw(st.sampled_from(keys))]
        elif action == "replace" and keys:
            holder[draw(st.sampled_from(keys))] = draw(json_values)
        else:
            holder[draw(st.text(max_size=8) | st.sampled_from(c.CONTACT_FIELDS))] = \
                draw(json_values)
    return obj


@settings(max_examples=400, deadline=None)
@given(mutated(), st.sampled_from(["r", None]))
def test_mutations_of_valid_frames(obj: Any, ref: str | None) -> None:
    if ref is not None and isinstance(obj, dict):
        obj["ref"] = ref
    check(p.parse(dump(obj)))


def test_every_valid_example_parses() -> None:
    for obj in VALID:
        item = one(json.dumps(obj))
        assert isinstance(item, p.Frame), obj
