"""Scale-out: several ``livespace serve`` nodes on one PostgreSQL database and one Redis.

Every test starts its own cluster: a fresh database, a Redis prefix of its own and two or
three real server processes sharing a JWT secret. Clients connect to chosen nodes and
check what DESIGN.md sections 1 and 6 promise whichever node they are on: every durable
event in ``seq`` order once, cluster-wide presence, live revocation, no loss when a
node dies, drains or loses its broker connection.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from conftest import LIVESPACE, Server, ServerFactory, free_port
from livespace.client import DURABLE, Client
from livespace.commands import CreateContact
from livespace.store import Actor, open_store
from services import REDIS_TEST_URL

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # starts processes itself

PRESENCE_TTL_S = 2.0
#: Upper bound on a lost event's delay: the node's head check (1.5 s) + gap wait + slack.
LOST_EVENT_S = 4.0


class Cluster:
    """Nodes on one database and one Redis prefix, sharing a JWT secret."""

    def __init__(self, factory: ServerFactory, database_url: str, prefix: str) -> None:
        self.factory = factory
        self.database_url = database_url
        self.prefix = prefix
        self.secret = secrets.token_urlsafe(48)
        self.env = {
            "JWT_SECRET": self.secret,
            "REDIS_URL": REDIS_TEST_URL,
            "LIVESPACE_REDIS_PREFIX": prefix,
            "LIVESPACE_PRESENCE_TTL_S": str(PRESENCE_TTL_S),
            "LIVESPACE_HTTP_RATE_LIMIT": "1000",
        }

    def node(self) -> Server:
        server = self.factory(self.database_url, **self.env)
        server.secret = self.secret  # tokens minted by any node's helper work on all
        return server

    def start(self, count: int) -> list[Server]:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda _: self.node(), range(count)))


@pytest.fixture
def cluster(tmp_path: Path, pg_server: str, pg_url: str, redis_prefix: str) -> Iterator[Cluster]:
    factory = ServerFactory("postgres", tmp_path, pg_server)
    try:
        yield Cluster(factory, pg_url, redis_prefix)
    finally:
        factory.close()


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_TEST_URL)
    yield client
    await client.aclose()


def has_ref(ref: str, frame: dict[str, Any]) -> bool:
    return frame.get("ref") == ref


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in frames if f.get("type") in DURABLE]


async def no_more(client: Client, type: str | None = None, timeout: float = 0.5) -> None:
    """Nothing (of ``type``, or durable) arrives within ``timeout``."""
    def kind(f: dict[str, Any]) -> bool:
        return f.get("type") == type if type else f.get("type") in DURABLE

    with pytest.raises(TimeoutError):
        extra = await client.next(where=kind, timeout=timeout)
        pytest.fail(f"unexpected frame: {extra}")


async def add_note(server: Server, user: str, ws: str, contact_id: str, body: str) -> int:
    async with server.api(user) as api:
        r = await api.post(f"/api/workspaces/{ws}/contacts/{contact_id}/notes",
                           json={"body": body})
    assert r.status_code == 201, r.text
    return int(r.json()["seq"])


async def online(server: Server, user: str, ws: str) -> dict[str, int]:
    async with server.api(user) as api:
        r = await api.get(f"/ws/workspace/{ws}/users")
    assert r.status_code == 200, r.text
    return {u["id"]: u["connections"] for u in r.json()["users"]}


async def alice_on_a_bob_on_b(
        cluster: Cluster, clients: list[Client]) -> tuple[Server, Server, str, Client, Client]:
    """Two nodes, a workspace of alice and bob, alice connected to A and bob to B."""
    a, b = cluster.start(2)
    ws = await a.workspace("alice", "bob")
    alice = await a.connect(ws, "alice")
    bob = await b.connect(ws, "bob")
    clients += [alice, bob]
    return a, b, ws, alice, bob


def kill(server: Server) -> None:
    """SIGKILL: no drain, no presence leave, no session flush."""
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait()
    server.proc = None


async def subscribers(redis: aioredis.Redis, prefix: str) -> set[int]:
    """Client ids of the broker subscriber connections of the cluster ``prefix``."""
    return {int(c["id"]) for c in await redis.client_list()
            if c.get("name") == f"{prefix}:subscriber"}


async def subscriber_besides(redis: aioredis.Redis, prefix: str, others: set[int]) -> int:
    """The one subscriber connection of ``prefix`` not in ``others``, once it is up."""
    deadline = time.monotonic() + 5
    while len(ids := await subscribers(redis, prefix) - others) != 1:
        assert time.monotonic() < deadline, f"subscribers besides {others}: {ids}"
        await asyncio.sleep(0.05)
    return ids.pop()


# ---- 1. ordered fan-out across nodes ------------------------------------------------------


async def test_events_from_any_node_reach_every_node_in_seq_order_once(
        cluster: Cluster, clients: list[Client]) -> None:
    a, b, c = cluster.start(3)
    ws = await a.workspace("alice", "bob", "carol")
    alice = await a.connect(ws, "alice")
    bob = await b.connect(ws, "bob")
    carol = await c.connect(ws, "carol")
    clients += [alice, bob, carol]

    ack = await alice.request("contact_created", {"name": "Ada"})  # socket on A
    contact = ack["data"]["id"]
    assert (await bob.request("note_added", {"contact_id": contact, "body": "b"}))["seq"] == 2
    assert await add_note(a, "carol", ws, contact, "rest on A") == 3
    assert await add_note(b, "alice", ws, contact, "rest on B") == 4
    for client in (alice, bob, carol):
        assert seqs(await client.events(4)) == [1, 2, 3, 4]

    # concurrent writers on every node, over sockets and REST
    async def pipeline(client: Client, count: int) -> None:
        refs = [f"{id(client)}-{i}" for i in range(count)]
        for ref in refs:
            await client.send("note_added", {"contact_id": contact, "body": ref}, ref)
        for ref in refs:
            ack = await client.next(where=partial(has_ref, ref))
            assert ack["type"] == "ack", ack

    async def rest(server: Server, user: str, count: int) -> None:
        for i in range(count):
            await add_note(server, user, ws, contact, f"{user} {i}")

    await asyncio.gather(pipeline(alice, 25), pipeline(bob, 25), rest(c, "carol", 10),
                         rest(a, "bob", 10), rest(b, "carol", 10))
    total = 4 + 80
    for client in (alice, bob, carol):
        assert seqs(await client.events(total - 4)) == list(range(5, total + 1))
        await no_more(client, timeout=0.3)


# ---- 2. cluster-wide presence -------------------------------------------------------------


async def test_presence_is_cluster_wide_and_multi_tab_across_nodes(
        cluster: Cluster, clients: list[Client], redis: aioredis.Redis) -> None:
    a, b = cluster.start(2)
    ws = await a.workspace("alice", "bob", "carol")
    alice = await a.connect(ws, "alice")
    carol = await b.connect(ws, "carol")
    clients += [alice, carol]
    joined = await alice.next("presence")
    assert (joined["event"], joined["user"]["id"]) == ("join", "carol")

    tab1 = await a.connect(ws, "bob")  # bob's first tab, on A: B's clients see the join
    clients.append(tab1)
    for watcher in (alice, carol):
        joined = await watcher.next("presence")
        assert (joined["event"], joined["user"]["id"]) == ("join", "bob")

    tab2 = await b.connect(ws, "bob")  # second tab on B: no second join anywhere
    clients.append(tab2)
    assert {u["id"]: u["connections"] for u in tab2.welcome["presence"]} == {
        "alice": 1, "bob": 2, "carol": 1}
    for server in (a, b):
        assert await online(server, "carol", ws) == {"alice": 1, "bob": 2, "carol": 1}
    await no_more(alice, "presence")
    await no_more(carol, "presence", timeout=0.1)

    await tab1.close()  # bob still has a tab on B: no leave
    assert (await tab2.request("ping"))["type"] == "pong"
    await no_more(alice, "presence")
    await no_more(carol, "presence", timeout=0.1)
    assert await online(b, "alice", ws) == {"alice": 1, "bob": 1, "carol": 1}

    await tab2.close()  # the last tab, on the other node: leave everywhere
    for watcher in (alice, carol):
        left = await watcher.next("presence")
        assert (left["event"], left["user"]["id"]) == ("leave", "bob")
    for server in (a, b):
        assert await online(server, "alice", ws) == {"alice": 1, "carol": 1}

    # Redis loses its data (a restart without persistence): the nodes' next beat finds
    # their liveness keys gone and they join their entries again
    await redis.delete(*[key async for key in redis.scan_iter(match=f"{cluster.prefix}:*")])
    deadline = time.monotonic() + PRESENCE_TTL_S + 1
    while await online(b, "carol", ws) != {"alice": 1, "carol": 1}:
        assert time.monotonic() < deadline, "presence was not restored"
        await asyncio.sleep(0.1)


async def test_direct_broadcasts_and_call_presence_across_nodes(
        cluster: Cluster, clients: list[Client]) -> None:
    """``broadcast`` with ``to`` reaches that member's tabs on every node and no one
    else; ``presence_update`` ``in_call`` with ``call`` shows who is in which call."""
    a, b = cluster.start(2)
    ws = await a.workspace("alice", "bob", "carol")
    alice = await a.connect(ws, "alice")
    bob_b, bob_a = await b.connect(ws, "bob"), await a.connect(ws, "bob")
    carol = await b.connect(ws, "carol")
    clients += [alice, bob_a, bob_b, carol]

    ack = await alice.request("presence_update", {"status": "in_call", "call": "call-1"})
    assert ack["type"] == "ack"
    for watcher in (bob_b, carol):
        update = await watcher.next("presence", where=lambda f: f["user"]["id"] == "alice")
        assert (update["event"], update["user"]["status"], update["user"]["call"]) == (
            "update", "in_call", "call-1")
    async with b.api("carol") as api:
        users = {u["id"]: u for u in (await api.get(f"/ws/workspace/{ws}/users")).json()["users"]}
    assert users["alice"]["call"] == "call-1" and users["carol"]["call"] is None

    offer = {"event": "offer", "payload": {"sdp": "v=0"}, "to": "bob"}
    assert (await alice.request("broadcast", offer))["type"] == "ack"
    for tab in (bob_a, bob_b):
        got = await tab.next("broadcast")
        assert got == {"type": "broadcast", "event": "offer", "payload": {"sdp": "v=0"},
                       "user_id": "alice"}
    await no_more(carol, "broadcast")
    await no_more(alice, "broadcast", timeout=0.1)
    # a direct message to oneself reaches one's other tabs, never the sending one
    assert (await bob_a.request("broadcast", {"event": "note-to-self", "to": "bob"}))[
        "type"] == "ack"
    assert (await bob_b.next("broadcast"))["event"] == "note-to-self"
    await no_more(bob_a, "broadcast", timeout=0.3)
    # nobody by that id, or offline: not an error, and no one gets it
    assert (await alice.request("broadcast", {"event": "x", "to": "nobody"}))["type"] == "ack"
    await no_more(carol, "broadcast", timeout=0.3)

    await alice.request("presence_update", {"status": "online"})
    update = await carol.next("presence", where=lambda f: f["user"]["id"] == "alice")
    assert (update["user"]["status"], update["user"]["call"]) == ("online", None)


# ---- 3. revocation on every node ----------------------------------------------------------


async def test_member_removal_and_downgrade_apply_on_every_node(
        cluster: Cluster, clients: list[Client]) -> None:
    a, b = cluster.start(2)
    ws = await a.workspace("alice", "bob", "carol")
    bob = await b.connect(ws, "bob")
    carol = await b.connect(ws, "carol")
    clients += [bob, carol]

    async with a.api("alice") as api:
        r = await api.delete(f"/api/workspaces/{ws}/members/bob")
        assert r.status_code == 204, r.text
        removed = time.monotonic()
        assert await bob.closed(timeout=1.0) == 4003
        assert time.monotonic() - removed < 1.0
        r = await api.put(f"/api/workspaces/{ws}/members/carol", json={"role": "viewer"})
        assert r.status_code == 200, r.text
    changed = await carol.next("role_changed", timeout=1.0)
    assert changed["role"] == "viewer" and changed["workspace_id"] == ws
    refused = await carol.request("contact_created", {"name": "Nope"})
    assert refused["type"] == "error" and refused["code"] == "forbidden"


# ---- 4. a node dies -----------------------------------------------------------------------


async def test_killed_node_clients_resume_elsewhere_and_its_presence_expires(
        cluster: Cluster, clients: list[Client], redis: aioredis.Redis) -> None:
    a, b = cluster.start(2)
    ws = await a.workspace("alice", "bob", "carol")
    bob = await b.connect(ws, "bob")
    alice = await a.connect(ws, "alice")
    carol = await a.connect(ws, "carol")
    clients += [bob, alice, carol]
    contact = (await alice.request("contact_created", {"name": "Ada"}))["data"]["id"]
    assert seqs(await alice.events(1)) == [1]
    assert [(await bob.next("presence"))["user"]["id"] for _ in range(2)] == ["alice", "carol"]

    kill(a)
    died = time.monotonic()
    for i in range(3):  # written while alice is away
        await add_note(b, "bob", ws, contact, f"while away {i}")
    resumed = await b.connect(ws, "alice", since=alice.last_seq)
    clients.append(resumed)
    assert resumed.welcome["replay"] == {"from_seq": 2, "to_seq": 4, "count": 3}
    assert seqs(await resumed.events(3)) == [2, 3, 4]
    assert (await bob.request("note_added", {"contact_id": contact, "body": "live"}))["seq"] == 5
    assert seqs(await resumed.events(1)) == [5]

    # carol never came back: her entry expires and the survivors announce her leave, once;
    # alice reconnected before hers expired, so she neither left nor joined again
    def leave(f: dict[str, Any]) -> bool:
        return f.get("type") == "presence" and f.get("event") == "leave"

    left = await bob.next(where=leave, timeout=PRESENCE_TTL_S + 3)
    assert left["user"]["id"] == "carol"
    assert time.monotonic() - died < PRESENCE_TTL_S + 3
    with pytest.raises(TimeoutError):
        pytest.fail(f"a second leave: {await bob.next(where=leave, timeout=PRESENCE_TTL_S)}")
    assert await online(b, "bob", ws) == {"alice": 1, "bob": 1}
    entries = await redis.hvals(f"{cluster.prefix}:presence:{ws}")
    assert {orjson.loads(e)["node"] for e in entries} == {f"test-{b.port}"}


async def test_killed_nodes_users_leave_within_the_default_bound(
        cluster: Cluster, clients: list[Client], redis: aioredis.Redis) -> None:
    """Default settings (LIVESPACE_PRESENCE_TTL_S 10 s): the leave of a SIGKILLed node's
    user reaches the others within 10 s of the kill (the time is printed: -s shows it)."""
    del cluster.env["LIVESPACE_PRESENCE_TTL_S"]
    a, b, ws, _, bob = await alice_on_a_bob_on_b(cluster, clients)
    assert [u["id"] for u in bob.welcome["presence"]] == ["alice", "bob"]
    kill(a)
    died = time.monotonic()
    left = await bob.next("presence", timeout=20)
    took = time.monotonic() - died
    print(f"leave announced {took:.2f} s after SIGKILL")
    assert (left["event"], left["user"]["id"]) == ("leave", "alice")
    assert took < 10.5  # the bound, with a little room for a loaded machine
    assert await online(b, "bob", ws) == {"bob": 1}
    assert await redis.exists(f"{cluster.prefix}:presence-node:test-{a.port}") == 0


async def test_paused_node_is_treated_as_dead_and_rejoins_when_it_resumes(
        cluster: Cluster, clients: list[Client]) -> None:
    a, b, ws, alice, bob = await alice_on_a_bob_on_b(cluster, clients)
    assert [u["id"] for u in bob.welcome["presence"]] == ["alice", "bob"]
    assert a.proc is not None
    a.proc.send_signal(signal.SIGSTOP)
    try:
        left = await bob.next("presence", timeout=PRESENCE_TTL_S + 5)
        assert (left["event"], left["user"]["id"]) == ("leave", "alice")
        assert await online(b, "bob", ws) == {"bob": 1}
    finally:
        a.proc.send_signal(signal.SIGCONT)
    joined = await bob.next("presence", timeout=PRESENCE_TTL_S + 5)
    assert (joined["event"], joined["user"]["id"]) == ("join", "alice")
    assert await online(b, "bob", ws) == {"alice": 1, "bob": 1}
    ack = await alice.request("contact_created", {"name": "Back"})  # its socket lived on
    assert ack["type"] == "ack", ack
    assert seqs(await bob.events(1)) == [ack["seq"]]


# ---- 5. the broker loses messages ---------------------------------------------------------


async def test_events_lost_while_a_subscriber_was_cut_off_are_delivered(
        cluster: Cluster, clients: list[Client], redis: aioredis.Redis) -> None:
    (a,) = cluster.start(1)
    before = await subscribers(redis, cluster.prefix)
    (b,) = cluster.start(1)
    b_subscriber = await subscriber_besides(redis, cluster.prefix, before)
    ws = await a.workspace("alice", "bob", "carol")
    alice = await a.connect(ws, "alice")
    bob = await b.connect(ws, "bob")
    carol = await b.connect(ws, "carol")
    clients += [alice, bob, carol]
    contact = (await alice.request("contact_created", {"name": "Ada"}))["data"]["id"]
    for client in (alice, bob, carol):
        assert seqs(await client.events(1)) == [1]

    # cut B's subscriber and write at once, inside its reconnect backoff
    await redis.client_kill_filter(_id=str(b_subscriber))
    for i in range(10):
        await alice.send("note_added", {"contact_id": contact, "body": f"n{i}"}, f"n{i}")
    for client in (alice, bob, carol):
        assert seqs(await client.events(10, timeout=LOST_EVENT_S)) == list(range(2, 12))
        await no_more(client, timeout=0.3)
    assert "subscriber connection lost" in b.logs()

    # membership changes whose control messages B never got (here: never published)
    # are read again from the store when B's subscriber reconnects
    store = await open_store(cluster.database_url)
    try:
        await store.remove_member(ws, "bob")
        await store.set_member(ws, "carol", "viewer")
    finally:
        await store.close()
    b_subscriber = await subscriber_besides(redis, cluster.prefix, before)  # reconnected
    await redis.client_kill_filter(_id=str(b_subscriber))
    assert await bob.closed(timeout=3) == 4003
    assert (await carol.next("role_changed", timeout=3))["role"] == "viewer"


async def test_last_event_lost_by_the_broker_arrives_without_a_later_one(
        cluster: Cluster, clients: list[Client]) -> None:
    _, _, ws, alice, bob = await alice_on_a_bob_on_b(cluster, clients)
    await alice.request("contact_created", {"name": "Ada"})
    for client in (alice, bob):
        assert seqs(await client.events(1)) == [1]

    # committed but never published (as when a node dies between commit and publish),
    # and followed by nothing: no gap reveals it, only the nodes' head check
    store = await open_store(cluster.database_url)
    try:
        lost = await store.apply(ws, Actor("ghost", "Ghost"), CreateContact(name="Lost"), None)
    finally:
        await store.close()
    assert lost.seq == 2
    for client in (alice, bob):
        event = await client.next("contact_created", timeout=LOST_EVENT_S)
        assert event["seq"] == 2 and event["data"]["name"] == "Lost"
        await no_more(client, timeout=0.3)


# ---- 6. graceful drain --------------------------------------------------------------------


async def test_draining_node_closes_1012_and_its_clients_lose_nothing(
        cluster: Cluster, clients: list[Client]) -> None:
    a, b, ws, alice, bob = await alice_on_a_bob_on_b(cluster, clients)
    contact = (await bob.request("contact_created", {"name": "Ada"}))["data"]["id"]
    total = 1 + 40

    async def write() -> None:  # bob keeps writing on B through A's drain
        for i in range(40):
            ack = await bob.request("note_added", {"contact_id": contact, "body": f"{i}"})
            assert ack["type"] == "ack", ack
            await asyncio.sleep(0.02)

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.2)
    assert a.proc is not None
    a.proc.terminate()
    assert await alice.closed(timeout=10) == 1012
    seen = seqs(alice.inbox)
    resumed = await b.connect(ws, "alice", since=alice.last_seq)
    clients.append(resumed)
    await writer
    seen += seqs(await resumed.events(total - alice.last_seq))
    assert seen == list(range(1, total + 1))
    await no_more(resumed, timeout=0.3)
    assert a.proc.wait(timeout=15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    assert "Application shutdown complete" in a.logs()


# ---- 7. serve --workers -------------------------------------------------------------------


async def connections_metric(http: str) -> float:
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{http}/metrics")).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == "livespace_connections")


def _serve(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([LIVESPACE, "serve", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


async def test_serve_with_workers_needs_redis_and_postgres_and_serves(
        cluster: Cluster, clients: list[Client], tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items()
            if k not in ("REDIS_URL", "LIVESPACE_NODE_ID", "DATABASE_URL")}
    env = {**base, **cluster.env, "DATABASE_URL": cluster.database_url,
           "LIVESPACE_DATA_DIR": str(tmp_path / "data")}
    refused = subprocess.run(
        [LIVESPACE, "serve", "--workers", "2", "--port", str(free_port())],
        env={k: v for k, v in env.items() if k != "REDIS_URL"},
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 2, refused
    assert "--workers > 1 needs REDIS_URL" in refused.stderr

    port = free_port()
    proc = _serve(["--workers", "2", "--port", str(port)], env, tmp_path / "workers.log")
    try:
        http = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "workers.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "serve --workers 2 did not start"
            try:
                if httpx.get(f"{http}/ws/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        server = Server(tmp_path, cluster.database_url)
        server.port, server.secret = port, cluster.secret
        ws = await server.workspace("alice", "bob")
        tabs = [await server.connect(ws, user) for user in ("alice", "bob") * 3]
        clients += tabs
        assert (await tabs[0].request("contact_created", {"name": "Ada"}))["seq"] == 1
        for tab in tabs:
            assert seqs(await tab.events(1)) == [1]
        # /metrics from any worker sums every worker's (prometheus-client multiprocess);
        # gauges reach the shared files every few seconds
        deadline = time.monotonic() + 15
        while (found := await connections_metric(http)) != len(tabs):
            assert time.monotonic() < deadline, f"livespace_connections {found}"
            await asyncio.sleep(0.5)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()



# ---- 8. Redis goes away and comes back ----------------------------------------------------


class PrivateRedis:
    """A redis-server of this test's own on a free port, to stop and start at will."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_redis_outage_degrades_to_store_polling_and_recovers(
        cluster: Cluster, clients: list[Client], private_redis: PrivateRedis) -> None:
    cluster.env["REDIS_URL"] = private_redis.url
    a, b, ws, alice, bob = await alice_on_a_bob_on_b(cluster, clients)
    contact = (await alice.request("contact_created", {"name": "Ada"}))["data"]["id"]
    for client in (alice, bob):
        assert seqs(await client.events(1)) == [1]

    private_redis.stop()  # Redis loses everything: connections, presence, pub/sub
    ack = await alice.request("note_added", {"contact_id": contact, "body": "in the dark"})
    assert ack["type"] == "ack" and ack["seq"] == 2, ack  # committed: acknowledged
    deadline = time.monotonic() + 5  # a broadcast cannot reach anyone: unavailable
    while (sent := await alice.request("broadcast", {"event": "cursor", "payload": {}})
           )["type"] == "ack":
        assert time.monotonic() < deadline, "broadcasts still acknowledged"
        await asyncio.sleep(0.1)
    assert sent["code"] == "unavailable" and sent["retry_after"] > 0, sent
    assert await add_note(b, "bob", ws, contact, "rest in the dark") == 3
    for client in (alice, bob):  # both nodes read what the broker could not bring
        assert seqs(await client.events(2, timeout=LOST_EVENT_S)) == [2, 3]
    tab = await b.connect(ws, "alice", since=1)  # connecting and closing still work
    assert tab.welcome["replay"]["count"] == 2 and seqs(await tab.events(2)) == [2, 3]
    other = await a.connect(ws, "bob")
    await other.close()
    clients.append(tab)

    private_redis.start()  # empty: the nodes resubscribe and restore presence
    deadline = time.monotonic() + 10
    while await online(a, "alice", ws) != {"alice": 2, "bob": 1}:
        assert time.monotonic() < deadline, "presence was not restored"
        await asyncio.sleep(0.2)
    assert (await bob.request("note_added", {"contact_id": contact, "body": "back"}))["seq"] == 4
    for client in (alice, bob, tab):
        assert seqs(await client.events(1, timeout=LOST_EVENT_S)) == [4]
