"""The Broker contract, run on every engine (memory, Redis); Redis also across two nodes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from seams import engine, redis_target  # noqa: F401 - fixtures

from livespace.broker import Broker
from livespace.broker.memory import MemoryBroker
from livespace.broker.redis import RedisBroker

pytestmark = pytest.mark.integration

MakeBroker = Callable[[], Awaitable[Broker]]


@pytest.fixture
async def make_broker(engine: str, redis_target: tuple[str, str]) -> AsyncIterator[MakeBroker]:
    """Starts brokers of the engine under test (Redis: each one a node); closes them after."""
    brokers: list[Broker] = []
    url, prefix = redis_target

    async def make() -> Broker:
        broker: Broker = MemoryBroker() if engine == "memory" else RedisBroker(url, prefix=prefix)
        await broker.start()
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        await broker.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def settle(broker: Broker) -> None:
    """Let in-flight messages arrive: a marker published last arrives after them."""
    seen: list[bytes] = []
    sub = await broker.subscribe("settle", seen.append)
    await broker.publish("settle", b"marker")
    await eventually(lambda: bool(seen))
    await sub.cancel()


async def test_delivers_to_every_handler_of_the_channel(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    first: list[bytes] = []
    second: list[bytes] = []
    await broker.subscribe("ws1", first.append)
    await broker.subscribe("ws1", second.append)
    await broker.publish("ws1", b"hello")
    await eventually(lambda: first == [b"hello"] and second == [b"hello"])


async def test_does_not_deliver_to_other_channels(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    mine: list[bytes] = []
    other: list[bytes] = []
    await broker.subscribe("ws1", mine.append)
    await broker.subscribe("ws2", other.append)
    await broker.publish("ws1", b"for ws1")
    await eventually(lambda: mine == [b"for ws1"])
    await settle(broker)
    assert other == []


async def test_keeps_publish_order_of_one_publisher(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    got: list[bytes] = []
    await broker.subscribe("ws1", got.append)
    sent = [str(i).encode() for i in range(1000)]
    for message in sent:
        await broker.publish("ws1", message)
    await eventually(lambda: len(got) >= len(sent))
    assert got == sent


async def test_publish_many_keeps_order_among_single_publishes(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    got: list[bytes] = []
    await broker.subscribe("ws1", got.append)
    await broker.publish("ws1", b"first")
    await broker.publish_many("ws1", [str(i).encode() for i in range(300)])
    await broker.publish("ws1", b"last")
    await eventually(lambda: len(got) >= 302)
    assert got == [b"first", *(str(i).encode() for i in range(300)), b"last"]


async def test_delivers_at_most_once(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    got: list[bytes] = []
    await broker.subscribe("ws1", got.append)
    for i in range(50):
        await broker.publish("ws1", str(i).encode())
    await eventually(lambda: len(got) >= 50)
    await settle(broker)
    assert sorted(got, key=int) == [str(i).encode() for i in range(50)]


async def test_stores_nothing_for_later_subscribers(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    await broker.publish("ws1", b"before")
    got: list[bytes] = []
    await broker.subscribe("ws1", got.append)
    await broker.publish("ws1", b"after")
    await eventually(lambda: bool(got))
    await settle(broker)
    assert got == [b"after"]


async def test_cancel_stops_delivery_to_that_handler_only(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    cancelled: list[bytes] = []
    kept: list[bytes] = []
    sub = await broker.subscribe("ws1", cancelled.append)
    await broker.subscribe("ws1", kept.append)
    await broker.publish("ws1", b"one")
    await eventually(lambda: cancelled == [b"one"] and kept == [b"one"])
    await sub.cancel()
    await sub.cancel()  # idempotent
    await broker.publish("ws1", b"two")
    await eventually(lambda: kept == [b"one", b"two"])
    await settle(broker)
    assert cancelled == [b"one"]


async def test_cancel_of_last_handler_then_resubscribe(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    got: list[bytes] = []
    sub = await broker.subscribe("ws1", got.append)
    await sub.cancel()
    await broker.publish("ws1", b"unheard")
    await broker.subscribe("ws1", got.append)
    await broker.publish("ws1", b"heard")
    await eventually(lambda: bool(got))
    await settle(broker)
    assert got == [b"heard"]


async def test_failing_handler_does_not_stop_others(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    got: list[bytes] = []

    def explode(message: bytes) -> None:
        raise RuntimeError("handler bug")

    await broker.subscribe("ws1", explode)
    await broker.subscribe("ws1", got.append)
    await broker.publish("ws1", b"one")
    await broker.publish("ws1", b"two")
    await eventually(lambda: got == [b"one", b"two"])


@pytest.mark.parametrize("engine", ["redis"], indirect=True)
async def test_two_nodes_see_each_others_messages(make_broker: MakeBroker) -> None:
    node_a, node_b = await make_broker(), await make_broker()
    at_a: list[bytes] = []
    at_b: list[bytes] = []
    await node_a.subscribe("ws1", at_a.append)
    await node_b.subscribe("ws1", at_b.append)
    await node_a.publish("ws1", b"from a")
    await node_b.publish("ws1", b"from b")
    await eventually(lambda: sorted(at_a) == [b"from a", b"from b"] == sorted(at_b))


@pytest.mark.parametrize("engine", ["redis"], indirect=True)
async def test_two_brokers_with_other_prefixes_are_isolated(
    make_broker: MakeBroker, redis_server: str, redis_prefix: str
) -> None:
    node = await make_broker()
    stranger = RedisBroker(redis_server, prefix=redis_prefix + ":other")
    await stranger.start()
    try:
        heard: list[bytes] = []
        await stranger.subscribe("ws1", heard.append)
        await node.publish("ws1", b"private")
        await settle(stranger)
        assert heard == []
    finally:
        await stranger.close()


@pytest.mark.parametrize("engine", ["redis"], indirect=True)
async def test_reader_recovers_after_its_connection_is_killed(
    make_broker: MakeBroker, redis_server: str, redis_prefix: str
) -> None:
    broker = await make_broker()
    assert isinstance(broker, RedisBroker)
    reconnects: list[bool] = []
    broker.on_reconnect = lambda: reconnects.append(True)
    got: list[bytes] = []
    await broker.subscribe("ws1", got.append)
    assert broker.connected

    admin = aioredis.from_url(redis_server)
    try:
        clients = await admin.client_list(_type="pubsub")
        ours = [c["id"] for c in clients if c.get("name") == f"{redis_prefix}:subscriber"]
        assert len(ours) == 1
        assert await admin.client_kill_filter(_id=ours[0]) == 1
    finally:
        await admin.aclose()

    deadline = time.monotonic() + 10.0
    while not got:
        assert time.monotonic() < deadline, "broker did not recover"
        await broker.publish("ws1", b"probe")
        await asyncio.sleep(0.1)
    assert broker.connected
    assert reconnects == [True]
    got.clear()
    await broker.publish("ws1", b"after")
    await eventually(lambda: got == [b"after"])
