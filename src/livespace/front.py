"""The WebSocket front: every upgrade on the HTTP port, on websockets' sans-I/O protocol.

uvicorn serves HTTP (REST, OpenAPI, static files) and hands each WebSocket upgrade
request to the class given as its ``ws`` option, its documented protocol-class seam:
:class:`FrontProtocol`, an ``asyncio.Protocol`` that owns the connection from then on.
It parses the handshake and every frame with ``websockets.server.ServerProtocol`` (no
I/O of its own) and routes by path:

- ``/ws/workspace/{id}``: :class:`livespace.api.socket.WorkspaceSocket`, the raw path:
  no ASGI scope, no task per connection, frames written pre-encoded to the transport;
- any other path (``/ws/workspace/{id}/notes/{note_id}/doc``, ...): the ASGI app, as an
  ordinary ASGI WebSocket (:class:`livespace.front_asgi.AsgiSocket`), so routes of the
  FastAPI app keep working unchanged.

A handler is anything with ``on_message(data)`` and ``on_end(code)``
(:class:`Handler`); :meth:`Front.route` is the one place that picks it.

Limits: the upgrade request's headers (``LIVESPACE_MAX_HEADER_BYTES``, 431 past it);
the time from upgrade to an accepted or refused handshake
(``LIVESPACE_HANDSHAKE_TIMEOUT_S``, then 503); message size (``LIVESPACE_MAX_FRAME``,
1009). Keep-alive is one node-wide sweep every heartbeat, not a timer per connection:
a socket that sent nothing for a whole beat gets a ping, and is dropped when it has
still sent nothing at the next one. Permessage-deflate is offered only with
``LIVESPACE_WS_DEFLATE=1`` (docs/performance.md says what it costs).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast
from urllib.parse import unquote

from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from livespace.config import Settings
from livespace.front_asgi import AsgiSocket
from livespace.front_wire import FrontWire, Handler

log = logging.getLogger(__name__)

#: Where the lifespan puts the :class:`Front` (ASGI lifespan state: uvicorn hands it to
#: each protocol instance as ``app_state``).
STATE_KEY = "livespace.front"
WORKSPACE_PREFIX = "/ws/workspace/"
#: websockets' protocol logs each opened connection at INFO: not on this hot path
_WS_LOG = logging.getLogger("livespace.front.websockets")
_WS_LOG.setLevel(logging.WARNING)


def _no_subprotocol(protocol: ServerProtocol, offered: Any) -> None:
    return None  # the handler chooses, and sets the response header itself


def workspace_of(path: str) -> str | None:
    """The workspace id of a ``/ws/workspace/{id}`` path, else None."""
    if not path.startswith(WORKSPACE_PREFIX):
        return None
    rest = path[len(WORKSPACE_PREFIX):]
    if not rest or "/" in rest:
        return None
    return unquote(rest)


class Front:
    """This node's front: its settings, the app to hand other paths to, open sockets."""

    def __init__(self, settings: Settings, workspace: Any, app: Any,
                 app_state: dict[str, Any] | None = None, metrics: Any = None) -> None:
        self.settings = settings
        #: builds the handler of a workspace socket: (proto, request, workspace_id, query)
        self.workspace = workspace
        self.app = app
        self.app_state = app_state if app_state is not None else {}
        self.sockets: set[FrontProtocol] = set()
        self.served = {"workspace": 0, "asgi": 0}
        self.metrics = metrics  # livespace.metrics.Metrics: front_sockets by path kind
        self.extensions = (
            [ServerPerMessageDeflateFactory(server_max_window_bits=12,
                                            client_max_window_bits=12,
                                            compress_settings={"memLevel": 5})]
            if settings.ws_deflate else None
        )
        self._beat: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._beat = asyncio.get_running_loop().create_task(self._heartbeat())

    def drain(self) -> None:
        """The node stops: sockets of the ASGI app close with 1012 (the node closes its
        workspace sockets itself)."""
        for proto in tuple(self.sockets):
            if isinstance(proto.handler, AsgiSocket):
                proto.handler.drain()

    async def stop(self) -> None:
        if self._beat is not None:
            self._beat.cancel()

    def route(self, proto: FrontProtocol, request: Request) -> Handler:
        path, _, query = request.path.partition("?")
        workspace_id = workspace_of(path)
        kind = "asgi" if workspace_id is None else "workspace"
        self.served[kind] += 1
        if self.metrics is not None:
            self.metrics.front_sockets.labels(kind).inc()
        if workspace_id is not None:
            handler: Handler = self.workspace(proto, request, workspace_id, query)
            return handler
        return AsgiSocket(proto, self.app, self.app_state, request, path, query)

    async def _heartbeat(self) -> None:
        """One sweep per heartbeat over every socket: ping the quiet, drop the dead."""
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            for i, proto in enumerate(tuple(self.sockets)):
                proto.beat()
                if i % 2000 == 1999:
                    await asyncio.sleep(0)  # a big node's sweep does not stall the loop


class FrontProtocol(FrontWire, asyncio.Protocol):
    """One upgraded connection: uvicorn's ``ws`` protocol class.

    uvicorn constructs it with keywords (``config``, ``server_state``, ``app_state``),
    calls ``connection_made`` and feeds it the upgrade request's bytes; only
    ``app_state`` (the ASGI lifespan state) is used.
    """

    __slots__ = ("_parts", "_parts_text", "_timeout", "front")  # the rest: FrontWire's

    def __init__(self, config: Any = None, server_state: Any = None,
                 app_state: dict[str, Any] | None = None) -> None:
        front = (app_state or {}).get(STATE_KEY)
        if not isinstance(front, Front):
            raise RuntimeError("FrontProtocol serves the livespace app (its lifespan state "
                               f"has no {STATE_KEY!r})")
        self.front = front
        self.ws = ServerProtocol(max_size=front.settings.max_frame,
                                 extensions=front.extensions,
                                 select_subprotocol=_no_subprotocol, logger=_WS_LOG)
        self.transport: asyncio.Transport | None = None
        self.handler: Handler | None = None
        self.paused = False
        self.seen = True
        self.pinged = False
        self._ended = False
        self.live = False  # open for data frames: handshake done, no close sent or received
        self._parts: list[bytes] | None = None
        self._parts_text = True
        self._drain: asyncio.Future[None] | None = None
        self._timeout: asyncio.TimerHandle | None = None

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.front.sockets.add(self)
        self._timeout = asyncio.get_running_loop().call_later(
            self.front.settings.handshake_timeout_s, self._handshake_expired)

    def data_received(self, data: bytes) -> None:
        self.seen = True
        ws = self.ws
        if self.handler is None:
            # uvicorn hands over the whole request head at once
            if len(data) > self.front.settings.max_header_bytes:
                self.reject(431, "Request header fields too large.\n")
                return
            ws.receive_data(data)
            self._on_request()
            return
        ws.receive_data(data)
        events = ws.events_received()
        self.flush()
        for frame in events:
            if not isinstance(frame, Frame):
                continue
            op = frame.opcode
            data = frame.data if isinstance(frame.data, bytes) else bytes(frame.data)
            if op is Opcode.TEXT or op is Opcode.BINARY:
                if frame.fin:
                    self._message(op is Opcode.TEXT, data)
                else:
                    self._parts = [data]
                    self._parts_text = op is Opcode.TEXT
            elif op is Opcode.CONT and self._parts is not None:
                # a fragmented message (rare: browsers and SDKs send whole ones); its
                # total size is bounded by the protocol's max_size
                self._parts.append(data)
                if frame.fin:
                    parts, self._parts = self._parts, None
                    self._message(self._parts_text, b"".join(parts))
        if ws.close_rcvd is not None or ws.state is State.CLOSED:
            self.live = False
            self._end()

    def _message(self, text: bool, data: bytes) -> None:
        handler = self.handler
        if handler is None or self._ended:
            return
        if not text:
            handler.on_message(data)
            return
        try:
            decoded = data.decode()
        except UnicodeDecodeError:
            log.info("%s - WebSocket text frame not UTF-8: closing with 1007", self.peer)
            self.fail(1007, "text frames must be UTF-8")
            return
        handler.on_message(decoded)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.sockets.discard(self)
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self.paused = False
        self._release_drain()
        self._end()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._release_drain()

    # ---- handshake ----------------------------------------------------------------------

    def _on_request(self) -> None:
        ws = self.ws
        events = ws.events_received()
        if not events or not isinstance(events[0], Request):
            if ws.handshake_exc is not None:
                ws.data_to_send()  # its EOF: the error response goes first
                self.reject(400, "Failed to open a WebSocket connection: invalid request.\n")
            return
        request = events[0]
        self.handler = self.front.route(self, request)

    def accept(self, request: Request, subprotocol: str | None = None,
               headers: list[tuple[bytes, bytes]] | None = None) -> bool:
        """Complete the handshake (101); False when the request was not a valid one (its
        HTTP error was sent), or the handshake timed out or the peer left meanwhile."""
        ws = self.ws
        if ws.state is not State.CONNECTING or self.transport is None or self._ended:
            return False
        response = ws.accept(request)
        if response.status_code == 101:
            if subprotocol is not None:
                response.headers["Sec-WebSocket-Protocol"] = subprotocol
            for name, value in headers or ():
                response.headers[name.decode("latin-1")] = value.decode("latin-1")
        ws.send_response(response)
        self._handshake_done()
        self.flush()
        self.live = response.status_code == 101  # websockets is OPEN once it is sent
        return response.status_code == 101

    def reject(self, status: int, text: str) -> None:
        """Refuse the upgrade with an HTTP error response, then close."""
        ws = self.ws
        if ws.state is not State.CONNECTING or self.transport is None:
            return
        ws.send_response(ws.reject(status, text))
        self._handshake_done()
        self.flush()
        self.transport.close()

    def _handshake_done(self) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None

    def _handshake_expired(self) -> None:
        self._timeout = None
        if self.ws.state is State.CONNECTING:
            log.info("%s - WebSocket handshake timed out", self.peer)
            self.reject(503, "Handshake timed out.\n")
