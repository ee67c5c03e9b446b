"""Hardening against the real server: validation, rate limits, caps, token lifetime,
revocation, slow consumers and bounded memory. Numbers of frames, bytes and seconds are
in each test; the clock is the real one.

Engine-independent: these run on SQLite only (the store is exercised on both engines by
the gateway and fuzz suites).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from conftest import Server, ServerFactory
from livespace.client import DURABLE, Client, Refused

pytestmark = pytest.mark.integration

KIB = 1024
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def engine() -> str:
    return "sqlite"


def users(n: int, prefix: str = "u") -> list[str]:
    """Fresh user ids: rate limit buckets are per user, so tests do not share them."""
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}{i}-{tag}" for i in range(n)]


async def replies(client: Client, refs: list[str], timeout: float = 10.0) -> dict[str, Any]:
    """The ack/error/pong answering each ref, by ref."""
    wanted = set(refs)
    got: dict[str, Any] = {}
    while wanted - set(got):
        frame = await client.next(where=lambda f: f.get("ref") in wanted - set(got)
                                  and f.get("type") in ("ack", "error", "pong"),
                                  timeout=timeout)
        got[frame["ref"]] = frame
    return got


async def all_events(server: Server, user: str, ws: str) -> list[dict[str, Any]]:
    return await server.events(user, ws)


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert match
    return int(match.group(1)) * KIB


class RssProbe:
    """Samples the server's resident memory every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = rss_bytes(pid)
        self.peak = self.baseline
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RssProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, rss_bytes(self.pid))

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            await asyncio.sleep(0.02)


async def open_unread(server: Server, ws: str, user: str,
                      since: int | None = None) -> tuple[ClientConnection, dict[str, Any]]:
    """A client that stops reading after ``welcome``: a 4 KiB receive buffer, one queued
    message, no compression. Until :func:`drain` is called the server's writes pile up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * KIB)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    url = f"{server.ws}/ws/workspace/{ws}" + ("" if since is None else f"?since={since}")
    conn = await websockets.connect(
        url, sock=sock, additional_headers={"Authorization": f"Bearer {server.token(user)}"},
        max_queue=1, compression=None, ping_interval=None, max_size=2**24)
    welcome = orjson.loads(await conn.recv())
    assert welcome["type"] == "welcome"
    return conn, welcome


async def drain(conn: ClientConnection, timeout: float = 20.0
                ) -> tuple[list[dict[str, Any]], int | None]:
    """Read everything until the server closes: the frames, and the close code."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(orjson.loads(await conn.recv()))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


class Flooder:
    """A member that pipelines frames as fast as the socket takes them, reading its own
    socket meanwhile (so that it is never the slow one) and counting acks."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.acks = 0
        self.errors: list[dict[str, Any]] = []
        self.last_seq = 0
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, server: Server, ws: str, user: str) -> Flooder:
        conn = await websockets.connect(
            f"{server.ws}/ws/workspace/{ws}", compression=None, ping_interval=None,
            additional_headers={"Authorization": f"Bearer {server.token(user)}"},
            max_size=2**24)
        return cls(conn)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.conn:
                frame = orjson.loads(raw)
                if frame["type"] == "ack":
                    self.acks += 1
                elif frame["type"] == "error":
                    self.errors.append(frame)
                elif frame["type"] in DURABLE:
                    self.last_seq = frame["seq"]

    async def send(self, frames: list[dict[str, Any]]) -> None:
        for frame in frames:
            await self.conn.send(orjson.dumps(frame).decode())

    async def wait_acks(self, count: int, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while self.acks < count:
                assert not self.errors, self.errors[:3]
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.conn.close()
        self._reader.cancel()


@pytest.fixture
async def flooders() -> AsyncIterator[list[Flooder]]:
    opened: list[Flooder] = []
    yield opened
    for flooder in opened:
        await flooder.close()


async def wait_for_log(server: Server, needle: str, timeout: float) -> float:
    """Seconds until ``needle`` appears in the server's log."""
    started = time.monotonic()
    while needle not in server.logs():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{needle!r} not logged within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def health(server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.get("/ws/health")
        assert r.status_code == 200
        body: dict[str, Any] = r.json()
        return body


# ---- 1. validation ---------------------------------------------------------------------------


def nested(keys: str) -> dict[str, Any]:
    """{"a": {"b": ... {}}}: one level per key."""
    value: dict[str, Any] = {}
    for key in reversed(keys):
        value = {key: value}
    return value


async def test_every_frame_type_is_validated_with_precise_details(
    server: Server, clients: list[Client]
) -> None:
    owner, member = users(2)
    ws = await server.workspace(owner, member)
    alice = await server.connect(ws, owner)
    clients.append(alice)
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("ack", {"seq": -1}, "validation_failed", "seq"),
        ("refresh", {"token": ""}, "validation_failed", "token"),
        ("contact_created", {"name": "x" * 201}, "validation_failed", "name"),
        ("contact_created", {"name": "x", "tags": ["t"] * 51}, "validation_failed", "tags"),
        ("contact_created", {"name": "x", "fields": {"n": 2**53}}, "validation_failed",
         "fields.n"),
        ("contact_created", {"name": "x", "phone": "1\u0000"}, "validation_failed", "phone"),
        ("contact_updated", {"id": "c1", "changes": {}}, "validation_failed", "changes"),
        ("contact_updated", {"id": "c1", "changes": {"nick": "x"}}, "validation_failed",
         "changes.nick"),
        ("contact_deleted", {"id": "x" * 65}, "validation_failed", "id"),
        ("note_added", {"contact_id": "c1", "body": "b" * 10_001}, "validation_failed", "body"),
        ("typing", {"contact_id": "c1", "is_typing": "yes"}, "validation_failed", "is_typing"),
        ("presence_update", {"status": "asleep"}, "validation_failed", "status"),
        ("broadcast", {"event": "e" * 65}, "validation_failed", "event"),
        ("broadcast", {"event": "e", "payload": nested("abcdefghijklmnop")},
         "validation_failed", "payload.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p"),
        ("ping", {"unexpected": 1}, "validation_failed", "data.unexpected"),
    ]
    refs = [f"v{i}" for i in range(len(cases))]
    for ref, (type_, data, _, _) in zip(refs, cases, strict=True):
        await alice.send(type_, data, ref)
    got = await replies(alice, refs)
    for ref, (type_, _, code, field) in zip(refs, cases, strict=True):
        assert got[ref]["code"] == code, (type_, got[ref])
        assert got[ref]["details"]["field"] == field, (type_, got[ref])
        assert got[ref]["details"]["reason"] and got[ref]["message"]

    # numbers JSON parsers choke on: answered with the field and the ref, not a crash
    await alice.send_raw('{"type":"contact_created","ref":"n1","data":{"name":"x",'
                         '"fields":{"big":1e400}}}')
    await alice.send_raw('{"type":"contact_created","ref":"n2","data":{"name":"x",'
                         '"fields":{"big":' + "9" * 400 + "}}}")
    got = await replies(alice, ["n1", "n2"])
    assert got["n1"]["details"] == {"field": "fields.big", "reason": "must be a finite number"}
    assert got["n2"]["details"] == {"field": "fields.big",
                                    "reason": "must be within +/-(2**53-1)"}
    await alice.send_raw('{"type":"ping","ref":"nan","data":{"x":NaN}}')
    assert (await alice.next("error"))["code"] == "invalid_json"
    await alice.send_raw('{"type":"ping","ref":"' + "r" * 65 + '"}')
    long_ref = await alice.next("error")
    assert long_ref["code"] == "invalid_message" and "ref" not in long_ref
    await alice.send_raw('{"type":"ping","ref":"k","sig":"x"}')
    unknown_key = await alice.next("error")
    assert unknown_key["code"] == "invalid_message" and unknown_key["ref"] == "k"
    await alice.send_raw(b"\x00\x01binary")
    assert (await alice.next("error"))["code"] == "invalid_message"
    # nothing was created, and the connection is still fine
    assert (await alice.request("ping"))["type"] == "pong"
    assert await all_events(server, owner, ws) == []


async def test_frames_over_a_custom_max_frame_close_1009(
    servers: ServerFactory, clients: list[Client]
) -> None:
    server = servers(LIVESPACE_MAX_FRAME="4096")
    owner, other = users(2)
    ws = await server.workspace(owner, other)
    alice = await server.connect(ws, owner)
    bob = await server.connect(ws, other)
    clients.append(bob)
    body = "b" * 3900  # a 4,000-byte frame: under the bound, handled
    fits = await alice.request("note_added", {"contact_id": "c1", "body": body})
    assert fits["code"] == "not_found"
    await alice.send("note_added", {"contact_id": "c1", "body": body + "b" * 200})  # 4,200 B
    assert await alice.closed() == 1009
    assert (await bob.request("ping"))["type"] == "pong"  # the neighbour is unaffected


# ---- 2. rate limits and caps ----------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(servers: ServerFactory) -> Server:
    """5 frames/s per connection, 8 per user; 3 sockets per user, 5 per workspace."""
    return servers(LIVESPACE_RATE_LIMIT="5", LIVESPACE_USER_RATE_LIMIT="8",
                   LIVESPACE_MAX_CONNECTIONS_PER_USER="3",
                   LIVESPACE_MAX_CONNECTIONS_PER_WORKSPACE="5")


async def test_over_the_connection_rate_a_frame_is_refused_and_not_processed(
    strict: Server, clients: list[Client]
) -> None:
    owner, = users(1)
    ws = await strict.workspace(owner)
    alice = await strict.connect(ws, owner)
    clients.append(alice)
    refs = [f"c{i}" for i in range(12)]
    started = time.monotonic()
    for ref in refs:  # 12 mutations at once against a burst of 5
        await alice.send("contact_created", {"name": f"contact {ref}"}, ref)
    got = await replies(alice, refs)
    elapsed = time.monotonic() - started
    acked = [r for r in refs if got[r]["type"] == "ack"]
    limited = [r for r in refs if got[r]["type"] == "error"]
    assert all(got[r]["code"] == "rate_limited" for r in limited)
    # the burst (5) plus what 5/s refills while the 12 frames were being handled
    assert 5 <= len(acked) <= 5 + int(elapsed * 5) + 1 and len(limited) >= 12 - len(acked)
    for ref in limited:
        assert 0 < got[ref]["retry_after"] <= 0.2  # one token at 5/s
    events = await all_events(strict, owner, ws)
    assert [e["seq"] for e in events] == list(range(1, len(acked) + 1))
    assert sorted(e["data"]["name"] for e in events) == sorted(f"contact {r}" for r in acked)
    await asyncio.sleep(1.0)  # a second refills the bucket: the connection goes on
    assert (await alice.request("contact_created", {"name": "later"}))["type"] == "ack"


async def test_sustained_abuse_closes_4008_and_spares_the_neighbours(
    strict: Server, clients: list[Client]
) -> None:
    abuser, neighbour = users(2)
    ws = await strict.workspace(abuser, neighbour)
    mallory = await strict.connect(ws, abuser)
    bob = await strict.connect(ws, neighbour)
    clients.append(bob)
    for i in range(100):  # 100 frames at once: 5 pass, 10 refusals within 5 s are allowed
        await mallory.send("ping", None, f"p{i}")
    assert await mallory.closed() == 4008
    pongs = [f for f in mallory.inbox if f["type"] == "pong"]
    limited = [f for f in mallory.inbox if f.get("code") == "rate_limited"]
    assert 5 <= len(pongs) <= 7 and 10 <= len(limited) <= 12
    assert (await bob.request("ping"))["type"] == "pong"


async def test_the_user_limit_spans_their_connections(
    strict: Server, clients: list[Client]
) -> None:
    owner, other = users(2)
    ws = await strict.workspace(owner, other)
    tabs = [await strict.connect(ws, owner) for _ in range(3)]
    bob = await strict.connect(ws, other)
    clients.extend([*tabs, bob])
    # 3 tabs x 4 frames: each tab under its own 5/s, together 12 against the user's 8
    for t, tab in enumerate(tabs):
        for i in range(4):
            await tab.send("ping", None, f"t{t}-{i}")
    codes = []
    for t, tab in enumerate(tabs):
        got = await replies(tab, [f"t{t}-{i}" for i in range(4)])
        codes += [f.get("code", f["type"]) for f in got.values()]
    assert codes.count("rate_limited") >= 3 and codes.count("pong") >= 8
    for _ in range(4):  # another user is not touched by it
        assert (await bob.request("ping"))["type"] == "pong"


async def test_connection_caps_per_user_and_per_workspace(
    strict: Server, clients: list[Client]
) -> None:
    owner, *members = users(6)
    ws = await strict.workspace(owner, *members)
    # 6 handshakes of one user at once against a cap of 3: exactly 3 get in
    outcomes = await asyncio.gather(*(strict.connect(ws, owner) for _ in range(6)),
                                    return_exceptions=True)
    admitted = [c for c in outcomes if isinstance(c, Client)]
    refused = [c for c in outcomes if isinstance(c, Refused)]
    clients.extend(admitted)
    assert len(admitted) == 3 and [r.code for r in refused] == [4008] * 3
    # the workspace holds 5: two more members fit, the third does not
    clients.append(await strict.connect(ws, members[0]))
    clients.append(await strict.connect(ws, members[1]))
    with pytest.raises(Refused) as full:
        await strict.connect(ws, members[2])
    assert full.value.code == 4008
    # a closed connection frees its place
    await admitted[0].close()
    await asyncio.sleep(0.2)
    clients.append(await strict.connect(ws, members[2]))


async def test_a_busy_person_at_the_default_limits_is_never_refused(
    server: Server, clients: list[Client]
) -> None:
    """Defaults (50 frames/s a connection, 100 a user): two tabs, each moving a cursor at
    40 broadcasts/s for 2 s and saving a contact twice a second, are never refused."""
    owner, other = users(2)
    ws = await server.workspace(owner, other)
    tabs = [await server.connect(ws, owner) for _ in range(2)]
    clients.extend(tabs)

    async def busy(tab: Client, t: int) -> list[str]:
        refs: list[str] = []
        for i in range(80):
            await tab.send("broadcast", {"event": "cursor", "payload": {"x": i}}, f"b{t}-{i}")
            refs.append(f"b{t}-{i}")
            if i % 20 == 0:
                await tab.send("contact_created", {"name": f"tab {t} #{i}"}, f"c{t}-{i}")
                refs.append(f"c{t}-{i}")
            await asyncio.sleep(1 / 40)
        got = await replies(tab, refs)
        return [f["code"] for f in got.values() if f["type"] == "error"]

    assert list(await asyncio.gather(busy(tabs[0], 0), busy(tabs[1], 1))) == [[], []]


async def test_http_routes_answer_429_with_retry_after(servers: ServerFactory) -> None:
    server = servers(LIVESPACE_HTTP_RATE_LIMIT="3")
    owner, other = users(2)
    ws = await server.workspace(owner)  # 1 request of the 3
    await asyncio.sleep(1.0)
    async with server.api(owner) as api, server.api(other) as bystander:
        # 8 at once against a burst of 3 (plus what 3/s refills while they are served)
        answers = await asyncio.gather(*(api.get(f"/api/workspaces/{ws}/contacts")
                                         for _ in range(8)))
        ok = [r for r in answers if r.status_code == 200]
        limited = [r for r in answers if r.status_code == 429]
        assert 3 <= len(ok) <= 5 and len(ok) + len(limited) == 8
        for r in limited:
            assert r.headers["Retry-After"] == "1"
            error = r.json()["error"]
            assert error["code"] == "rate_limited" and 0 < error["retry_after"] <= 1 / 3
        assert (await bystander.get("/api/workspaces")).status_code == 200
        await asyncio.sleep(1.0)
        assert (await api.get(f"/api/workspaces/{ws}/contacts")).status_code == 200
    # a WebSocket handshake is an HTTP request too: a reconnect storm is refused with 4008
    await asyncio.sleep(1.0)
    codes: list[int] = []
    for _ in range(5):
        try:
            client = await server.connect(ws, owner)
            codes.append(0)
            await client.close()
        except Refused as refused:
            codes.append(refused.code or 0)
    assert codes[:3] == [0, 0, 0] and 4008 in codes[3:]


async def test_rest_is_bearer_only_so_cookies_carry_no_authority(server: Server) -> None:
    owner, = users(1)
    token = server.token(owner)
    async with httpx.AsyncClient(base_url=server.http, cookies={"token": token,
                                                                "session": token}) as http:
        r = await http.post("/api/workspaces", json={"name": "csrf"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


# ---- 3. token lifetime -----------------------------------------------------------------------


async def test_a_token_expiring_while_connected_closes_4010(server: Server) -> None:
    owner, = users(1)
    ws = await server.workspace(owner)
    started = time.time()
    client = await server.connect(ws, owner, ttl=2)
    exp = int(started) + 2
    assert await client.closed(timeout=5) == 4010
    assert exp - 0.1 <= time.time() <= exp + 1.5  # at exp, not before (no leeway set)


async def test_refresh_keeps_the_connection_past_the_old_exp(
    server: Server, clients: list[Client]
) -> None:
    owner, other = users(2)
    ws = await server.workspace(owner, other)
    client = await server.connect(ws, owner, ttl=2)
    clients.append(client)
    old_exp = int(time.time()) + 2
    # another user's token: forbidden; garbage or a forged or expired token: refused; the
    # connection stays either way
    wrong = await client.request("refresh", {"token": server.token(other, ttl=60)})
    assert wrong["type"] == "error" and wrong["code"] == "forbidden"
    for bad in ("not.a.jwt", server.token(owner, ttl=60, secret="s" * 48),
                server.token(owner, ttl=-5)):
        err = await client.request("refresh", {"token": bad})
        assert err["code"] == "validation_failed" and err["details"]["field"] == "token"
    fresh = server.token(owner, ttl=60)
    ack = await client.request("refresh", {"token": fresh})
    assert ack["type"] == "ack" and ack["data"]["exp"] >= old_exp + 57
    await asyncio.sleep(max(0.0, old_exp + 1.5 - time.time()))
    assert (await client.request("ping"))["type"] == "pong"  # 1.5 s past the old exp


async def test_refused_refreshes_do_not_extend_the_connection(server: Server) -> None:
    owner, other = users(2)
    ws = await server.workspace(owner, other)
    client = await server.connect(ws, owner, ttl=2)
    await client.request("refresh", {"token": server.token(other, ttl=60)})
    await client.request("refresh", {"token": "x.y.z"})
    assert await client.closed(timeout=5) == 4010


# ---- 4. live revocation (single node) ---------------------------------------------------------


async def test_deleting_a_workspace_closes_its_sockets_4003_within_a_second(
    server: Server, clients: list[Client]
) -> None:
    owner, member, outsider = users(3)
    ws = await server.workspace(owner, member)
    other_ws = await server.workspace(outsider)
    sockets = [await server.connect(ws, owner), await server.connect(ws, member)]
    unrelated = await server.connect(other_ws, outsider)
    clients.append(unrelated)
    async with server.api(owner) as api:
        started = time.monotonic()
        assert (await api.delete(f"/api/workspaces/{ws}")).status_code == 204
        codes = await asyncio.gather(*(s.closed(timeout=3) for s in sockets))
        assert codes == [4003, 4003] and time.monotonic() - started < 1.0
    with pytest.raises(Refused) as refused:
        await server.connect(ws, owner)
    assert refused.value.code == 4003
    assert (await unrelated.request("ping"))["type"] == "pong"


# ---- 5. slow consumers -----------------------------------------------------------------------


UNLIMITED = {"LIVESPACE_RATE_LIMIT": "1000000", "LIVESPACE_USER_RATE_LIMIT": "1000000",
             "LIVESPACE_HTTP_RATE_LIMIT": "1000000"}


@pytest.fixture(scope="module")
def roomy(servers: ServerFactory) -> Server:
    """256 KiB of pending output per connection; rate limits out of the flood's way."""
    return servers(LIVESPACE_SEND_QUEUE_BYTES=str(256 * KIB), LIVESPACE_CLOSE_GRACE_S="10",
                   **UNLIMITED)


async def test_ephemeral_flood_to_a_client_that_never_reads(
    roomy: Server, flooders: list[Flooder]
) -> None:
    """150 MB of broadcasts to a client that reads nothing: server memory stays within
    40 MiB of where it started; the broadcasts are dropped, the client is not closed and
    gets the durable event sent after the flood."""
    owner, member = users(2)
    ws = await roomy.workspace(owner, member)
    slow, _ = await open_unread(roomy, ws, member)
    flooder = await Flooder.open(roomy, ws, owner)
    flooders.append(flooder)
    payload = {"blob": "x" * (15 * KIB)}
    count = 10_000  # x ~15.4 KB = ~154 MB
    assert roomy.proc is not None
    async with RssProbe(roomy.proc.pid) as rss:
        for _ in range(0, count, 500):
            await flooder.send([{"type": "broadcast", "data": {"event": "cursor",
                                                               "payload": payload}}] * 500)
        await flooder.send([{"type": "contact_created", "ref": "after", "data": {"name": "Z"}}])
        await flooder.wait_acks(1)
    grew = rss.peak - rss.baseline
    assert grew < 40 * MIB, f"server RSS grew {grew / MIB:.1f} MiB"
    frames, code = await drain_some(slow, until=lambda f: f["type"] == "contact_created")
    broadcasts = sum(1 for f in frames if f["type"] == "broadcast")
    assert code is None and broadcasts < count // 10  # most were dropped for this client
    assert frames[-1]["type"] == "contact_created" and frames[-1]["seq"] == 1
    await slow.send(json.dumps({"type": "ping", "ref": "still-open"}))
    pong, code = await drain_some(slow, until=lambda f: f.get("ref") == "still-open")
    assert code is None and pong[-1]["type"] == "pong"
    await slow.close()


async def drain_some(conn: ClientConnection, until: Any, timeout: float = 20.0
                     ) -> tuple[list[dict[str, Any]], int | None]:
    """Read until a frame matches ``until`` (code None) or the server closes (its code)."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(orjson.loads(await conn.recv()))
                if until(frames[-1]):
                    return frames, None
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None


class NotePoster:
    """Adds ~4 KB notes over REST, 16 requests in flight: the events reach the workspace's
    sockets while the poster's own replies never queue behind a socket's bound."""

    def __init__(self, server: Server, user: str, ws: str) -> None:
        self.api = server.api(user)
        self.ws = ws
        self.sent = 0

    async def contact(self) -> str:
        r = await self.api.post(f"/api/workspaces/{self.ws}/contacts", json={"name": "Flood"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def notes(self, contact_id: str, count: int) -> None:
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with gate:
                r = await self.api.post(f"/api/workspaces/{self.ws}/contacts/{contact_id}/notes",
                                        json={"body": f"{i:08d}" + "n" * 4000})
                assert r.status_code == 201, r.text

        await asyncio.gather(*(one(i) for i in range(self.sent, self.sent + count)))
        self.sent += count

    async def close(self) -> None:
        await self.api.aclose()


async def test_durable_flood_closes_4009_then_resume_loses_nothing(roomy: Server) -> None:
    """A client that stops reading while ~4 KB events pour in is closed with 4009 once
    256 KiB are pending behind the kernel's buffers; the close frame comes after what was
    pending; reconnecting with since=<last seq it processed> brings every event once."""
    owner, member = users(2)
    ws = await roomy.workspace(owner, member)
    slow, welcome = await open_unread(roomy, ws, member)
    poster = NotePoster(roomy, owner, ws)
    contact_id = await poster.contact()
    closing = asyncio.Event()

    async def pour() -> None:
        """4 KB notes, 50 at a time, until 100 more went in after the close decision."""
        while not closing.is_set():
            assert poster.sent < 10_000, "the slow client was never closed"
            await poster.notes(contact_id, 50)
        await poster.notes(contact_id, 100)

    assert roomy.proc is not None
    pouring = asyncio.create_task(pour())
    try:
        async with RssProbe(roomy.proc.pid) as rss:
            await wait_for_log(roomy, f"connection {welcome['session_id']} too slow", 60)
            closing.set()
            # the client reads again at once: well within the 10 s close grace
            frames, code = await drain(slow)
            await pouring
    finally:
        pouring.cancel()
        await poster.close()
    assert rss.peak - rss.baseline < 40 * MIB
    head = 1 + poster.sent
    assert poster.sent * 4000 >= 256 * KIB
    assert code == 4009
    seqs = [f["seq"] for f in frames if f["type"] in DURABLE]
    assert seqs == list(range(1, len(seqs) + 1))  # in order, no gap up to the close
    assert frames[-1]["type"] in DURABLE  # the close frame came after the pending data
    last = seqs[-1] if seqs else 0
    assert last < head

    resumed = await Client.connect(roomy.ws, ws, roomy.token(member), since=last)
    assert resumed.welcome["replay"] == {"from_seq": last + 1, "to_seq": head,
                                         "count": head - last}
    events = await resumed.events(head - last, timeout=20)
    await resumed.close()
    assert [e["seq"] for e in events] == list(range(last + 1, head + 1))
    stored = await all_events(roomy, owner, ws)
    assert events == stored[last:]  # what was missed, exactly as the log holds it
    assert [f for f in frames if f["type"] in DURABLE] == stored[:last]


async def test_a_peer_that_never_reads_is_cut_after_the_close_grace(servers: ServerFactory) -> None:
    """After 4009 the close waits behind the pending data at most LIVESPACE_CLOSE_GRACE_S
    (1 s here): then the outbox is dropped and the TCP connection aborted, so a peer that
    never reads again holds neither memory nor a socket."""
    server = servers(LIVESPACE_SEND_QUEUE_BYTES=str(64 * KIB), LIVESPACE_CLOSE_GRACE_S="1",
                     **UNLIMITED)
    owner, member = users(2)
    ws = await server.workspace(owner, member)
    slow, welcome = await open_unread(server, ws, member)
    poster = NotePoster(server, owner, ws)
    contact_id = await poster.contact()
    assert (await health(server))["total_connections"] == 1
    conn_id = welcome["session_id"]
    try:
        while f"connection {conn_id} too slow" not in server.logs():
            assert poster.sent < 10_000, "the slow client was never closed"
            await poster.notes(contact_id, 250)
    finally:
        await poster.close()
    waited = await wait_for_log(server, f"connection {conn_id} did not close within 1.0 s",
                                timeout=3.0)
    assert waited <= 1.5
    await asyncio.sleep(0.2)
    assert (await health(server))["total_connections"] == 0
    _, code = await drain(slow, timeout=10)
    assert code != 4009  # the close frame never reached it: the connection was reset
    await slow.close()
