"""A bounded fuzz run against the live server, on SQLite and PostgreSQL.

2,000 random frames from four members at once (one of them a viewer, one a batch client):
valid frames, valid frames with random mutations, deep nesting, numbers no parser should
accept, NUL and lone surrogates, wrong types, random text and binary frames. Then 40
frames that must end their connection: invalid UTF-8 in a text frame (1007) and frames
past LIVESPACE_MAX_FRAME (1009), each from a fresh connection. Afterwards the server
still serves, answered every frame with a documented code (never ``internal``), kept the
data from before the fuzz as it was, and its event log has no gap and no unacknowledged
event. The seed is fixed: a failure replays the same frames. For a longer run:
``LIVESPACE_FUZZ_SEED=7 LIVESPACE_FUZZ_FRAMES=20000 pytest tests/integration/test_fuzz.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import uuid
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from conftest import Server, ServerFactory
from livespace.client import DURABLE, Client

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("LIVESPACE_FUZZ_SEED", "42026"))
FRAMES_PER_CLIENT = int(os.environ.get("LIVESPACE_FUZZ_FRAMES", "2000")) // 4
CLOSERS = 40
ERROR_CODES = {"invalid_json", "invalid_message", "unknown_type", "validation_failed",
               "forbidden", "not_found", "conflict", "rate_limited"}
TYPES = ["ping", "ack", "refresh", "contact_created", "contact_updated", "contact_deleted",
         "note_added", "typing", "presence_update", "broadcast"]
NUMBER_LITERALS = ["1e400", "-1e400", "1" + "0" * 400, "-" + "9" * 4000, "18446744073709551616",
                   "9007199254740993", "NaN", "Infinity", "-Infinity", "1e-400", "-0", "0.1e1"]
ODD_STRINGS = ["", " ", "\x00", "a\x00b", "\\ud800", "\u202e\u0644", "🦄" * 40, "x" * 70,
               "x" * 10_001, "<script>", "'; DROP TABLE contacts; --", "%s%n", "../../etc"]


class Fuzzer:
    """Random frames from one seeded generator, aimed at one workspace."""

    def __init__(self, rng: random.Random, ids: list[str]) -> None:
        self.rng = rng
        self.ids = ids  # contact ids the fuzzer may aim at (its own, and foreign ones)

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        kind = r.randrange(10 if depth < 3 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return r.choice([True, False])
        if kind == 2:
            return r.choice([0, -1, 1, 2**31, 2**53 - 1, -(2**53 - 1), r.randrange(-999, 999)])
        if kind == 3:
            return r.choice([0.5, -1e300, 1e15, 3.14159])
        if kind in (4, 5):
            return r.choice([*ODD_STRINGS, self.id(), "online", "vip", "a@b.c"])
        if kind in (6, 7):
            return [self.value(depth + 1) for _ in range(r.randrange(4))]
        return {r.choice(["name", "id", "x", "changes", "", "payload", "\x00"]):
                self.value(depth + 1) for _ in range(r.randrange(4))}

    def id(self) -> str:
        return self.rng.choice([*self.ids, "c1", "x" * 64, "x" * 65, "bad id", ""])

    def valid(self) -> dict[str, Any]:
        r = self.rng
        kind = r.choice(TYPES)
        data: dict[str, Any] = {}
        if kind == "ack":
            data = {"seq": r.randrange(0, 50)}
        elif kind == "refresh":
            data = {"token": "a.b.c"}
        elif kind == "contact_created":
            data = {"name": f"fuzz {r.randrange(10**6)}", "tags": ["t"], "email": "f@z.io",
                    "phone": "+1 555", "company": "Co", "fields": {"n": r.randrange(100),
                                                                  "s": "text"}}
        elif kind == "contact_updated":
            data = {"id": self.id(), "changes": {"company": f"co {r.randrange(99)}"}}
            if r.random() < 0.5:
                data["base_version"] = r.randrange(1, 4)
        elif kind == "contact_deleted":
            data = {"id": self.id()}
        elif kind == "note_added":
            data = {"contact_id": self.id(), "body": "note " * r.randrange(1, 50)}
        elif kind == "typing":
            data = {"contact_id": self.id(), "is_typing": r.random() < 0.5}
        elif kind == "presence_update":
            data = {"status": r.choice(["online", "away", "busy", "in_call"]),
                    "viewing": r.choice([None, self.id()])}
        elif kind == "broadcast":
            data = {"event": "cursor", "payload": {"x": r.randrange(999), "y": [1.5]}}
        frame: dict[str, Any] = {"type": kind, "data": data}
        if r.random() < 0.8:
            frame["ref"] = f"f{r.randrange(10**9)}"
        return frame

    def mutated(self) -> dict[str, Any]:
        r = self.rng
        frame = self.valid()
        for _ in range(r.randrange(1, 4)):
            holder = r.choice([frame, frame["data"]]) if isinstance(frame.get("data"), dict) \
                else frame
            keys = list(holder)
            action = r.randrange(5)
            strings = [k for k, v in holder.items() if isinstance(v, str)]
            if action == 4 and strings:  # an odd string where a string goes
                holder[r.choice(strings)] = r.choice(ODD_STRINGS)
            elif action == 0 and keys:
                del holder[r.choice(keys)]
            elif action == 1 and keys:
                holder[r.choice(keys)] = self.value()
            elif action == 2:
                holder[r.choice(["extra", "name", "ref", "type", "data", "seq"])] = self.value()
            else:
                frame["ref"] = r.choice([*ODD_STRINGS, 5, None, [], "r" * 64])
        return frame

    def odd_string(self) -> dict[str, Any]:
        """A valid frame with one of its strings (at any depth) replaced by an odd one."""
        frame = self.valid()
        leaves: list[tuple[Any, Any]] = []
        stack: list[Any] = [frame.get("data")]
        while stack:
            node = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node) \
                if isinstance(node, list) else ()
            for key, value in items:
                if isinstance(value, str):
                    leaves.append((node, key))
                elif isinstance(value, dict | list):
                    stack.append(value)
        if leaves:
            node, key = self.rng.choice(leaves)
            node[key] = self.rng.choice([*ODD_STRINGS, "\x00", "x\x00"])  # NUL twice as often
        return frame

    def nested(self) -> str:
        depth = self.rng.choice([17, 40, 500, 1100, 5000])
        opener, closer = self.rng.choice([("[", "]"), ('{"a":', "}")])
        inner = opener * depth + "1" + closer * depth
        head = '{"type":"broadcast","ref":"deep","data":{"event":"e","payload":{"x":'
        return head + inner + "}}}"

    def text(self) -> str | bytes:
        """One frame's text (``bytes``: send it as a binary frame), under the frame bound
        (oversized frames are the closers' job)."""
        while len(raw := self._text()) > 60_000:
            pass
        return raw

    def _text(self) -> str | bytes:
        r = self.rng
        roll = r.random()
        if roll < 0.25:
            return json.dumps(self.valid())
        if roll < 0.55:
            return json.dumps(self.mutated(), allow_nan=True)
        if roll < 0.65:
            return json.dumps(self.odd_string())
        if roll < 0.70:
            return self.nested()
        if roll < 0.80:  # a number literal spliced in where a value goes
            frame = json.dumps(self.valid())
            literal = r.choice(NUMBER_LITERALS)
            return frame.replace('"data": {', '"data": {"n": ' + literal + ", ", 1) \
                if r.random() < 0.5 else frame.replace('"cursor"', literal)
        if roll < 0.85:
            return json.dumps(self.value(), allow_nan=True)
        if roll < 0.90:  # random text: any code point, JSON-looking or not
            raw = bytes(r.randrange(256) for _ in range(r.randrange(1, 200)))
            return r.choice(["{", "[", ""]) + raw.decode("latin-1")
        if roll < 0.95:
            return bytes(r.randrange(256) for _ in range(r.randrange(0, 300)))
        frames = [self.valid() if r.random() < 0.5 else self.mutated()
                  for _ in range(r.choice([0, 1, 5, 101]))]
        return json.dumps(frames, allow_nan=True)


class Member:
    """A fuzzing member: sends, and reads everything it is sent."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.replies: list[dict[str, Any]] = []
        self.acked_seqs: set[int] = set()
        self.contact_ids: list[str] = []
        self.done = asyncio.Event()
        self.close_code: int | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                obj = orjson.loads(raw)
                for frame in obj if isinstance(obj, list) else [obj]:
                    self._seen(frame)
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
        self.done.set()

    def _seen(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind in ("ack", "error"):
            self.replies.append(frame)
            if kind == "ack" and isinstance(frame.get("seq"), int):
                self.acked_seqs.add(frame["seq"])
        if kind == "contact_created":
            self.contact_ids.append(frame["data"]["id"])
        if kind == "pong" and frame.get("ref") == "fuzz-done":
            self.done.set()


async def connect(server: Server, ws: str, user: str, batch: bool = False) -> ClientConnection:
    return await websockets.connect(
        f"{server.ws}/ws/workspace/{ws}" + ("?batch=1" if batch else ""),
        additional_headers={"Authorization": f"Bearer {server.token(user)}"},
        compression=None, ping_interval=None, max_size=2**24)


async def fuzz(member: Member, fuzzer: Fuzzer, count: int) -> None:
    for i in range(count):
        if i % 50 == 0:
            fuzzer.ids[:] = [*fuzzer.ids[:3], *member.contact_ids[-5:]]
        raw = fuzzer.text()
        await member.conn.send(raw)  # str: a text frame, bytes: a binary frame
    await member.conn.send('{"type":"ping","ref":"fuzz-done"}')
    await asyncio.wait_for(member.done.wait(), 60)


async def closer_codes(server: Server, ws: str, user: str, rng: random.Random) -> Counter[int]:
    """Frames that end their connection, each on a fresh one: the close codes seen."""
    codes: Counter[int] = Counter()
    for i in range(CLOSERS):
        conn = await connect(server, ws, user)
        await conn.recv()  # welcome
        if i % 2:
            payload = b'{"type":"ping","ref":"' + bytes([0xC3, 0x28, 0xFF, 0xFE]) * (i + 1) + b'"}'
            await conn.send(payload, text=True)  # invalid UTF-8 in a text frame
        else:
            size = 64 * 1024 + rng.randrange(1, 4096)
            await conn.send('{"type":"ping","data":{"x":"' + "a" * size + '"}}')
        try:
            async with asyncio.timeout(5):
                while True:
                    await conn.recv()
        except ConnectionClosed as closed:
            codes[closed.rcvd.code if closed.rcvd else 0] += 1
    return codes


async def test_fuzzing_the_live_server_leaves_it_serving_and_its_data_intact(
    servers: ServerFactory
) -> None:
    server: Server = servers(LIVESPACE_RATE_LIMIT="100000", LIVESPACE_USER_RATE_LIMIT="100000",
                             LIVESPACE_HTTP_RATE_LIMIT="100000")
    tag = uuid.uuid4().hex[:6]
    owner, viewer, names = f"owner-{tag}", f"viewer-{tag}", [f"fz{i}-{tag}" for i in range(3)]
    ws = await server.workspace(owner, *names, viewers=(viewer,))
    other_ws = await server.workspace(f"other-{tag}")
    # data from before the fuzz, in this workspace and in one the fuzzers cannot reach
    sentinels: dict[str, tuple[str, dict[str, Any], list[Any]]] = {}
    for user, workspace in ((owner, ws), (f"other-{tag}", other_ws)):
        async with server.api(user) as api:
            r = await api.post(f"/api/workspaces/{workspace}/contacts",
                               json={"name": "Sentinel", "tags": ["keep"], "fields": {"n": 1}})
            assert r.status_code == 201, r.text
            contact = r.json()
            r = await api.post(f"/api/workspaces/{workspace}/contacts/{contact['id']}/notes",
                               json={"body": "before the fuzz"})
            assert r.status_code == 201, r.text
            got = (await api.get(f"/api/workspaces/{workspace}/contacts/{contact['id']}")).json()
            notes = (await api.get(
                f"/api/workspaces/{workspace}/contacts/{contact['id']}/notes")).json()
            sentinels[workspace] = (user, got, notes["notes"])
    other_contact = sentinels[other_ws][1]["id"]
    before_other = await events(server, f"other-{tag}", other_ws)

    rng = random.Random(SEED)
    members = [Member(await connect(server, ws, user, batch=(i == 2)))
               for i, user in enumerate([*names, viewer])]
    fuzzers = [Fuzzer(random.Random(rng.random()), [other_contact]) for _ in members]
    try:
        await asyncio.gather(*(fuzz(m, f, FRAMES_PER_CLIENT) for m, f in zip(members, fuzzers,
                                                                              strict=True)))
        codes = await closer_codes(server, ws, names[0], random.Random(SEED))
        for member in members:  # nothing in the fuzz closed a connection
            assert member.close_code is None and not member.conn.close_code
    finally:
        for member in members:
            with contextlib.suppress(Exception):
                await member.conn.close()

    replies = [r for m in members for r in m.replies]
    seen = Counter(r.get("code", "ack") for r in replies)
    print(f"fuzz seed {SEED}: replies {dict(seen)}, closes {dict(codes)}")
    assert "internal" not in seen, [r for r in replies if r.get("code") == "internal"][:3]
    assert set(seen) <= ERROR_CODES | {"ack"}, seen
    assert seen["ack"] > 100 and seen["validation_failed"] > 100 and seen["invalid_json"] > 50
    assert codes == Counter({1007: CLOSERS // 2, 1009: CLOSERS // 2}), codes
    assert server.proc is not None and server.proc.poll() is None
    assert "Traceback" not in server.logs() and " ERROR " not in server.logs()

    # the server still serves
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get("/ws/health")).json()["status"] == "healthy"
    fresh = await Client.connect(server.ws, ws, server.token(owner))
    ack = await fresh.request("contact_created", {"name": "after the fuzz"})
    assert ack["type"] == "ack"
    head = ack["seq"]
    await fresh.close()

    # the data from before is as it was, and the log is whole
    for workspace, (user, contact, notes) in sentinels.items():
        async with server.api(user) as api:
            now = (await api.get(f"/api/workspaces/{workspace}/contacts/{contact['id']}")).json()
            now_notes = (await api.get(
                f"/api/workspaces/{workspace}/contacts/{contact['id']}/notes")).json()
        assert now == contact and now_notes["notes"] == notes
    assert await events(server, f"other-{tag}", other_ws) == before_other
    log = await events(server, owner, ws)
    assert [e["seq"] for e in log] == list(range(1, head + 1))
    assert all(e["type"] in DURABLE and e["workspace_id"] == ws for e in log)
    acked = set().union(*(m.acked_seqs for m in members))
    assert acked | {1, 2, head} == set(range(1, head + 1))  # every event was acknowledged
    assert not any(e["actor"]["id"] == viewer for e in log)  # the viewer changed nothing


async def events(server: Server, user: str, ws: str) -> list[dict[str, Any]]:
    return await server.events(user, ws)
