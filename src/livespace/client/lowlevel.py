"""The low-level socket client (asyncio, on the ``websockets`` library): one connection,
frames in and out, no reconnect; what the tests drive the server with. Applications
want :func:`livespace.client.connect` (:mod:`livespace.client.sdk`).

    client = await Client.connect("ws://127.0.0.1:8001", workspace_id, token)
    ack = await client.request("contact_created", {"name": "Ada"})
    event = await client.next("contact_created")
    ...
    client = await Client.connect(url, workspace_id, token, since=client.last_seq)

Frames are kept in an inbox so that waiting for one kind never loses another.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from livespace.commands import EVENT_TYPES

#: Every durable event type (``note_updated`` included: a collaborative note's body).
DURABLE = EVENT_TYPES


class Refused(Exception):
    """The server closed the connection instead of sending ``welcome``."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"refused with close code {code}: {reason}")
        self.code = code
        self.reason = reason


class Client:
    def __init__(self, ws: ClientConnection, batch: bool) -> None:
        self.ws = ws
        self.batch = batch
        self.inbox: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}
        self.last_seq = 0
        # refs are idempotency keys for 24 h per user: unique across connections
        self._refs = (f"{uuid.uuid4().hex[:12]}-{n}" for n in itertools.count(1))

    @classmethod
    async def connect(
        cls,
        base_url: str,
        workspace_id: str,
        token: str | None,
        *,
        since: int | None = None,
        epoch: str | None = None,
        compact: bool = False,
        batch: bool = False,
        via: str = "header",
        origin: str | None = None,
        timeout: float = 10.0,
        max_size: int | None = 2**24,
        max_queue: int | None = 1024,
    ) -> Client:
        """Open a connection and wait for ``welcome``; :class:`Refused` if closed instead."""
        query: dict[str, str] = {}
        headers: dict[str, str] = {}
        subprotocols = None
        if since is not None:
            query["since"] = str(since)
        if epoch is not None:
            query["epoch"] = epoch
        if compact:
            query["compact"] = "1"
        if batch:
            query["batch"] = "1"
        if token is not None:
            if via == "header":
                headers["Authorization"] = f"Bearer {token}"
            elif via == "subprotocol":
                subprotocols = ["livespace.v1", f"bearer.{token}"]
            else:
                query["token"] = token
        if origin is not None:
            headers["Origin"] = origin
        url = f"{base_url.rstrip('/')}/ws/workspace/{workspace_id}"
        if query:
            url += "?" + urlencode(query)
        ws = await websockets.connect(
            url,
            additional_headers=headers,
            subprotocols=subprotocols,  # type: ignore[arg-type]
            open_timeout=timeout,
            max_size=max_size,
            max_queue=max_queue,  # frames buffered before the socket stops being read
            ping_interval=None,
        )
        client = cls(ws, batch)
        try:
            client.welcome = await client.next("welcome", timeout=timeout)
        except ConnectionClosed as closed:
            rcvd = closed.rcvd
            raise Refused(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
        client.last_seq = int(client.welcome.get("seq", 0)) if since is None else since
        return client

    # ---- receiving ----------------------------------------------------------------------

    async def _read(self, timeout: float) -> None:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        obj = orjson.loads(raw)
        frames = obj if isinstance(obj, list) else [obj]
        for frame in frames:
            if frame.get("type") in DURABLE and isinstance(frame.get("seq"), int):
                self.last_seq = max(self.last_seq, frame["seq"])
            self.inbox.append(frame)

    async def next(
        self,
        type: str | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The first frame (of ``type``, matching ``where``), waiting up to ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, frame in enumerate(self.inbox):
                if (type is None or frame.get("type") == type) and (where is None or where(frame)):
                    return self.inbox.pop(i)
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no {type or 'frame'} within {timeout} s")
            await self._read(left)

    async def events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The next ``count`` durable events, in the order received."""
        return [
            await self.next(where=lambda f: f.get("type") in DURABLE, timeout=timeout)
            for _ in range(count)
        ]

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code."""
        try:
            while True:
                await self._read(timeout)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    # ---- sending ------------------------------------------------------------------------

    async def send(self, type: str, data: dict[str, Any] | None = None,
                   ref: str | None = None) -> None:
        frame: dict[str, Any] = {"type": type}
        if ref is not None:
            frame["ref"] = ref
        if data is not None:
            frame["data"] = data
        await self.ws.send(orjson.dumps(frame).decode())

    async def send_raw(self, raw: str | bytes) -> None:
        await self.ws.send(raw)

    async def request(self, type: str, data: dict[str, Any] | None = None, *,
                      ref: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """Send with a ``ref`` and wait for the ``ack``, ``pong`` or ``error`` echoing it."""
        ref = ref or next(self._refs)
        await self.send(type, data, ref)
        return await self.next(
            where=lambda f: f.get("ref") == ref and f.get("type") in ("ack", "error", "pong"),
            timeout=timeout,
        )

    async def close(self) -> None:
        await self.ws.close()
