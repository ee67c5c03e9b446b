"""The Python SDK: a workspace kept live on asyncio (DESIGN.md section 7).

    async with livespace.client.connect(url, workspace, token=jwt) as client:
        client.contacts          # id -> contact, kept current
        ack = await client.mutate("contact_created", {"name": "Ada"})
        async for event in client.events():   # durable events, once each, in order
            ...

A connection's life: the token (from ``token`` or ``token_provider``, called at every
connect), the snapshot over HTTP when there is none yet or the server said
``resync_required`` (a list is one consistent read with its ``seq`` and ``epoch``),
then the socket with ``since`` and ``epoch`` (``compact=1`` when more than
``compact_after`` events behind), the replay, live. Mutations wait in an ordered queue
until acked and are sent again, with their original ``ref``, after every reconnect (the
server applies a ref once). A socket that brings no frame for two heartbeats is
replaced; a token is refreshed on the open socket before it expires. Close codes are
read with :func:`livespace.codes.should_reconnect`; reconnects back off with jitter.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Generator
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from livespace.client import snapshot
from livespace.client.events import Events
from livespace.client.replica import Replica, backoff
from livespace.client.snapshot import LivespaceError, Resync
from livespace.codes import Close, should_reconnect
from livespace.commands import EVENT_TYPES as DURABLE

log = logging.getLogger(__name__)

TokenProvider = Callable[[], "Awaitable[str] | str"]
#: Errors that ask for the same ``ref`` again later instead of failing the mutation.
RETRIED = frozenset({"unavailable", "rate_limited"})


def _exp(token: str) -> float | None:
    """The ``exp`` claim of a JWT (not verified: only to know when to refresh)."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        return None


class LivespaceClient:
    def __init__(self, url: str, workspace: str, *, token: str | None = None,
                 token_provider: TokenProvider | None = None, compact_after: int | None = 1000,
                 refresh_margin_s: float = 30.0, backoff_s: tuple[float, float] = (0.25, 10.0),
                 timeout: float = 10.0) -> None:
        if (token is None) == (token_provider is None):
            raise ValueError("give token or token_provider")
        self.url = url.rstrip("/")
        self.workspace = workspace
        self._static = token
        self._provider = token_provider
        self.compact_after = compact_after
        self.refresh_margin_s = refresh_margin_s
        self.backoff_s = backoff_s
        self.timeout = timeout
        self.status = "connecting"  # connecting | live | offline | closed
        self.replica = Replica()
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self._ws: ClientConnection | None = None
        self._sendable = False
        self._outbox: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._refs = (f"{uuid.uuid4().hex[:12]}-{n}" for n in itertools.count(1))
        # weak: an iterator the application dropped stops receiving (and holding) events
        self._subscribers: weakref.WeakSet[Events] = weakref.WeakSet()
        self._live = asyncio.Event()
        self._error: LivespaceError | None = None
        self._resync = True  # no snapshot yet
        self._runner: asyncio.Task[None] | None = None
        self._token = ""
        self._last_frame = 0.0
        self._unauthorized = 0  # 4001s in a row
        self._tasks: set[asyncio.Future[None]] = set()
        self.connects = 0  # sockets opened (a reconnect counter for callers and tests)
        self.snapshots = 0  # snapshots loaded (the first, then one per resync)

    # ---- the surface ----------------------------------------------------------------------

    @property
    def contacts(self) -> dict[str, dict[str, Any]]:
        return self.replica.contacts

    @property
    def presence(self) -> dict[str, dict[str, Any]]:
        return self.replica.presence

    @property
    def seq(self) -> int:
        return self.replica.seq

    @property
    def epoch(self) -> str | None:
        return self.replica.epoch

    async def start(self) -> LivespaceClient:
        """Connect and return once live (snapshot loaded, replay done)."""
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())
        live = asyncio.ensure_future(self._live.wait())
        await asyncio.wait({live, self._runner}, return_when=asyncio.FIRST_COMPLETED)
        live.cancel()
        if self._error is not None:
            raise self._error
        return self

    def events(self) -> Events:
        return Events(self._subscribers, lambda: self._error)

    async def mutate(self, type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a mutation (queued while offline, sent again with the same ``ref`` until
        acked); the ``ack``, or :class:`LivespaceError` with the error's ``code``."""
        if self._error is not None or self.status == "closed":
            raise self._error or LivespaceError("closed", "the client is closed")
        ref = next(self._refs)
        frame = orjson.dumps({"type": type, "ref": ref, "data": data or {}}).decode()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._outbox[ref] = (frame, future)
        if self._sendable and self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(frame)
        return await asyncio.shield(future)

    async def close(self) -> None:
        self.status = "closed"
        self._fail(LivespaceError("closed", "the client is closed"), ended=True)
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        await self._http.aclose()

    async def __aenter__(self) -> LivespaceClient:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- the connection loop ------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while self.status != "closed":
            try:
                self.status = "connecting"
                await self._connection()
                attempt = 0 if self._live.is_set() else attempt + 1
            except Resync:
                self._resync = True
                continue
            except LivespaceError as err:  # refused for good
                self._fail(err, ended=True)
                return
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, httpx.HTTPError,
                    orjson.JSONDecodeError) as err:
                log.info("livespace: connection lost (%s: %s)", type(err).__name__, err)
                attempt += 1
            if self.status == "closed":
                return
            self._live.clear()
            self.status = "offline"
            await asyncio.sleep(backoff(attempt, low=self.backoff_s[0], high=self.backoff_s[1]))

    async def _fresh_token(self) -> str:
        if self._provider is None:
            assert self._static is not None
            return self._static
        token = self._provider()
        return await token if not isinstance(token, str) else token

    async def _connection(self) -> None:
        """One socket, from its snapshot (if needed) to its close."""
        self._token = await self._fresh_token()
        compact = False
        if self._resync:
            contacts, seq, epoch = await snapshot.contacts(self._http, self.workspace,
                                                           self._token)
            self.replica.load(contacts, seq, epoch)
            self.snapshots += 1
            self._resync = False
        elif self.compact_after is not None:
            head = await snapshot.head(self._http, self.workspace, self._token, self.seq,
                                       self.epoch)
            compact = head - self.seq > self.compact_after
        query = {"since": str(self.seq), "epoch": self.epoch or ""}
        if compact:
            query["compact"] = "1"
        scheme = "wss" if self.url.startswith("https") else "ws"
        url = (f"{scheme}{self.url.removeprefix('http').removeprefix('s')}"
               f"/ws/workspace/{self.workspace}?{urlencode(query)}")
        ws = await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {self._token}"},
            open_timeout=self.timeout, close_timeout=1.0, ping_interval=None,
            max_size=2**24)
        self.connects += 1
        try:
            await self._session(ws)
        finally:
            self._ws, self._sendable = None, False
            with contextlib.suppress(Exception):
                await ws.close()

    async def _session(self, ws: ClientConnection) -> None:
        try:
            welcome = orjson.loads(await asyncio.wait_for(ws.recv(), self.timeout))
        except ConnectionClosed as closed:
            self._refused(closed.rcvd.code if closed.rcvd else 1006, ws)
            raise
        if welcome.get("resync_required"):
            raise Resync
        self.replica.welcome(welcome)
        replay = welcome.get("replay") or {}
        pending, to_seq = int(replay.get("count", 0)), int(replay.get("to_seq", welcome["seq"]))
        self.replica.epoch = welcome.get("epoch", self.replica.epoch)
        heartbeat = float(welcome.get("heartbeat_s", 25.0))
        self._ws = ws
        if pending == 0:
            self._go_live(to_seq)
        await self._send_outbox(ws)
        self._unauthorized = 0
        tasks = [asyncio.ensure_future(self._watch(ws, heartbeat)),
                 asyncio.ensure_future(self._refresh_later(ws))]
        self._last_frame = time.monotonic()
        try:
            async for raw in ws:
                self._last_frame = time.monotonic()
                obj = orjson.loads(raw)
                for frame in obj if isinstance(obj, list) else [obj]:
                    if frame.get("type") in DURABLE and pending > 0:
                        pending -= 1
                        await self._on_frame(frame)
                        if pending == 0:
                            self._go_live(to_seq)
                    else:
                        await self._on_frame(frame)
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
        code = ws.close_code if ws.close_code is not None else 1006
        self._refused(code, ws)

    def _refused(self, code: int, ws: ClientConnection) -> None:
        """After a close: raise LivespaceError when reconnecting cannot help."""
        if code == Close.UNAUTHORIZED and self._provider is not None:
            self._unauthorized += 1
            if self._unauthorized == 1:
                return  # a provider may give a fresh token: one more try
        if not should_reconnect(code) and self.status != "closed":
            reason = ws.close_reason or ""
            raise LivespaceError("forbidden" if code == Close.FORBIDDEN else "closed",
                                 f"closed with {code} {reason}".strip(), {"close_code": code})

    def _go_live(self, to_seq: int) -> None:
        self.replica.caught_up(to_seq)
        self.status = "live"
        self._live.set()

    async def _send_outbox(self, ws: ClientConnection) -> None:
        """Every unacked mutation again, in order, with its ref; then new ones directly."""
        sent: set[str] = set()
        while True:
            todo = [ref for ref in self._outbox if ref not in sent]
            if not todo:
                break
            for ref in todo:
                if ref in self._outbox:
                    sent.add(ref)
                    await ws.send(self._outbox[ref][0])
        self._sendable = True

    async def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind in DURABLE:
            if self.replica.apply(frame):
                for subscriber in tuple(self._subscribers):
                    await subscriber.queue.put(frame)
        elif kind in ("ack", "error") and frame.get("ref") in self._outbox:
            self._answered(frame)
        elif kind == "presence":
            self.replica.on_presence(frame)

    def _answered(self, frame: dict[str, Any]) -> None:
        ref = frame["ref"]
        if frame["type"] == "error" and frame.get("code") in RETRIED:
            delay = float(frame.get("retry_after") or 1.0)
            asyncio.get_running_loop().call_later(delay, self._resend, ref)
            return
        _, future = self._outbox.pop(ref)
        if future.done():
            return
        if frame["type"] == "ack":
            future.set_result(frame)
        else:
            future.set_exception(LivespaceError(frame.get("code", "internal"),
                                                frame.get("message", ""), frame.get("details")))

    def _resend(self, ref: str) -> None:
        if ref in self._outbox and self._ws is not None and self._sendable:
            task = asyncio.ensure_future(self._ws.send(self._outbox[ref][0]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _watch(self, ws: ClientConnection, heartbeat: float) -> None:
        """Ping every heartbeat; no frame for two heartbeats: the socket is dead."""
        while True:
            await asyncio.sleep(heartbeat)
            if time.monotonic() - self._last_frame > 2 * heartbeat:
                log.info("livespace: no frame for %.1f s: replacing the socket", 2 * heartbeat)
                ws.transport.abort()
                return
            with contextlib.suppress(ConnectionClosed):
                await ws.send('{"type":"ping"}')

    async def _refresh_later(self, ws: ClientConnection) -> None:
        """Before the token expires: a fresh one from the provider, sent as ``refresh``."""
        while self._provider is not None:
            exp = _exp(self._token)
            if exp is None:
                return
            lifetime = exp - time.time()
            await asyncio.sleep(max(0.0, lifetime - min(self.refresh_margin_s, lifetime / 3)))
            self._token = await self._fresh_token()
            frame = {"type": "refresh", "ref": f"refresh-{uuid.uuid4().hex[:8]}",
                     "data": {"token": self._token}}
            await ws.send(orjson.dumps(frame).decode())

    # ---- ending -------------------------------------------------------------------------

    def _fail(self, error: LivespaceError, *, ended: bool) -> None:
        if ended:
            self.status = "closed"
        if error.code != "closed" or self._error is None:
            self._error = error if error.code != "closed" else None
        for _, future in self._outbox.values():
            if not future.done():
                future.set_exception(error)
        self._outbox.clear()
        for subscriber in tuple(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.queue.put_nowait(None)


class _Connecting:
    """What :func:`connect` returns: ``async with`` it, or ``await`` it."""

    def __init__(self, client: LivespaceClient) -> None:
        self.client = client

    def __await__(self) -> Generator[Any, None, LivespaceClient]:
        return self.client.start().__await__()

    async def __aenter__(self) -> LivespaceClient:
        return await self.client.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()


def connect(url: str, workspace: str, *, token: str | None = None,
            token_provider: TokenProvider | None = None, **options: Any) -> _Connecting:
    """A client of ``workspace`` on the server at ``url`` (``http(s)://host:port``);
    ``token`` or ``token_provider`` (called at every connect and before ``exp``)."""
    return _Connecting(LivespaceClient(url, workspace, token=token,
                                       token_provider=token_provider, **options))

