"""The WebSocket front: the raw path, other upgrades handed to the ASGI app, its limits.

The workspace socket must be served on the raw path (the metric counts what the front
routed where): a change that sent it through the ASGI app, the slower path, fails here.
The hand-off to the app is checked end to end with a small Starlette app on uvicorn with
the front's protocol class, as `livespace serve` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import InvalidStatus

from conftest import Server, ServerFactory, free_port
from livespace.client import Client
from livespace.config import Settings
from livespace.front import STATE_KEY, Front, FrontProtocol

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine() -> str:
    return "sqlite"


def front_counts(server: Server) -> dict[str, int]:
    text = httpx.get(f"{server.http}/metrics", timeout=10).text
    return {m[1]: int(m[2]) for m in
            re.finditer(r'livespace_front_sockets_total\{path="(\w+)"\} (\d+)', text)}


async def test_workspace_sockets_take_the_raw_path(server: Server, clients: list[Client]) -> None:
    ws = await server.workspace("alice", "bob")
    before = front_counts(server)
    alice = await server.connect(ws, "alice")
    bob = await server.connect(ws, "bob")
    clients += [alice, bob]
    await alice.request("contact_created", {"name": "Ada"})
    assert (await bob.next("contact_created"))["data"]["name"] == "Ada"
    after = front_counts(server)
    assert after["workspace"] - before.get("workspace", 0) == 2
    assert after.get("asgi", 0) == before.get("asgi", 0)  # nothing fell back to ASGI


async def test_unknown_upgrade_paths_go_to_the_app(server: Server) -> None:
    before = front_counts(server).get("asgi", 0)
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"{server.ws}/ws/nothing-here")
    assert refused.value.response.status_code == 403  # Starlette: no such route
    assert front_counts(server)["asgi"] == before + 1


def _upgrade(path: str, extra: str = "") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"{extra}\r\n").encode()


async def _status(server: Server, request: bytes) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return line.decode().strip()


async def test_oversized_upgrade_headers_get_431(server: Server) -> None:
    ws = await server.workspace("alice")
    big = "X-Padding: " + "a" * 20_000 + "\r\n"
    assert " 431 " in await _status(server, _upgrade(f"/ws/workspace/{ws}", big))


async def test_quiet_peer_is_pinged_then_dropped(servers: ServerFactory) -> None:
    server = servers(LIVESPACE_HEARTBEAT_S="0.5")
    ws = await server.workspace("alice")
    token = server.token("alice")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(_upgrade(f"/ws/workspace/{ws}?token={token}"))
    assert b" 101 " in await asyncio.wait_for(reader.readline(), 10)
    health = f"{server.http}/ws/health"
    async with httpx.AsyncClient() as http:
        assert (await http.get(health)).json()["total_connections"] == 1
        ping_seen = False
        # the peer reads but never answers (no pong, nothing sent)
        with contextlib.suppress(ConnectionError):
            while chunk := await asyncio.wait_for(reader.read(65536), 10):
                ping_seen = ping_seen or b"\x89\x00" in chunk
        assert ping_seen
        for _ in range(50):
            if (await http.get(health)).json()["total_connections"] == 0:
                break
            await asyncio.sleep(0.1)
        assert (await http.get(health)).json()["total_connections"] == 0
    writer.close()


async def test_deflate_is_negotiated_only_when_configured(servers: ServerFactory) -> None:
    plain = servers()
    deflate = servers(LIVESPACE_WS_DEFLATE="1")
    for server, expected in ((plain, False), (deflate, True)):
        ws = await server.workspace("alice")
        url = f"{server.ws}/ws/workspace/{ws}?token={server.token('alice')}"
        async with websockets.connect(url, compression="deflate") as sock:
            assert sock.response is not None
            offered = sock.response.headers.get("Sec-WebSocket-Extensions") or ""
            assert ("permessage-deflate" in offered) is expected
            assert '"welcome"' in str(await asyncio.wait_for(sock.recv(), 10))
            await sock.send('{"type":"contact_created","ref":"r1","data":{"name":"Zip"}}')
            frames = [str(await asyncio.wait_for(sock.recv(), 10)) for _ in range(2)]
            assert any('"ack"' in f and "Zip" in f for f in frames)  # and the event


# ---- the hand-off to the ASGI app, end to end -------------------------------------------


async def echo(websocket: WebSocket) -> None:
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=offered[0] if offered else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                await websocket.send_bytes(message["bytes"][::-1])
            elif message.get("text") == "close":
                await websocket.close(4321, "asked to")
                return
            else:
                await websocket.send_text(f"{websocket.path_params['name']}:{message['text']}")
    except WebSocketDisconnect:
        return


async def refuse(websocket: WebSocket) -> None:
    await websocket.close(4403)


@contextlib.asynccontextmanager
async def app_on_front() -> AsyncIterator[int]:
    def not_here(*args: Any) -> Any:
        raise AssertionError("only the app's routes here")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        front = Front(Settings(), not_here, app)
        front.start()
        state = {STATE_KEY: front}
        front.app_state = state
        yield state
        await front.stop()

    app = Starlette(lifespan=lifespan, routes=[WebSocketRoute("/echo/{name}", echo),
                                               WebSocketRoute("/refuse", refuse)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ws=FrontProtocol,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_asgi_routes_get_text_bytes_subprotocol_and_close() -> None:
    async with app_on_front() as port:
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo/kim",
                                      subprotocols=["y.v1"]) as sock:  # type: ignore[list-item]
            assert sock.subprotocol == "y.v1"
            await sock.send("hi")
            assert await sock.recv() == "kim:hi"
            await sock.send(b"\x01\x02\x03")
            assert await sock.recv() == b"\x03\x02\x01"
            big = "z" * 50_000  # more than one TCP segment, fragmented by the client
            await sock.send([big[:20_000], big[20_000:]])
            assert await sock.recv() == f"kim:{big}"
            await sock.send("close")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await sock.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4321
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(f"ws://127.0.0.1:{port}/refuse")
        assert refused.value.response.status_code == 403
        # a peer that goes away: the app sees a disconnect and the socket is released
        sock = await websockets.connect(f"ws://127.0.0.1:{port}/echo/gone")
        sock.transport.abort()
        await asyncio.sleep(0.2)



def metric(server: Server, name: str) -> float:
    text = httpx.get(f"{server.http}/metrics", timeout=10).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, name
    return float(found[1])


async def test_reconnects_read_no_membership_and_verify_no_token_again(server: Server) -> None:
    ws = await server.workspace("alice", "reconnecting")
    token = server.token("reconnecting")
    first = await Client.connect(server.ws, ws, token)
    await first.close()
    reads, tokens = (metric(server, "livespace_membership_reads_total"),
                     metric(server, "livespace_verified_tokens"))
    for _ in range(5):
        again = await Client.connect(server.ws, ws, token)
        assert again.welcome["user"]["id"] == "reconnecting"
        await again.close()
    assert metric(server, "livespace_membership_reads_total") == reads  # no store read
    assert metric(server, "livespace_verified_tokens") == tokens  # the same token, once
    # a removal reaches the cache at once: the next handshake is refused
    async with server.api("alice") as api:
        assert (await api.delete(f"/api/workspaces/{ws}/members/reconnecting")).status_code \
            in (200, 204)
    with pytest.raises(Exception) as refused:
        await Client.connect(server.ws, ws, token)
    assert getattr(refused.value, "code", None) == 4003
