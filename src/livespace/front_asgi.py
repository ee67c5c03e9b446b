"""Upgrades the front does not serve itself go to the ASGI app as ordinary WebSockets.

:class:`AsgiSocket` runs the app with an ASGI ``websocket`` scope (ASGI 3, spec 2.3)
over a :class:`~livespace.front.FrontProtocol`: ``websocket.connect``, then one
``websocket.receive`` per message (``text`` or ``bytes``), then ``websocket.disconnect``
with the peer's close code (1006 when the connection was lost, 1012 when the node
drains). The app's ``websocket.accept`` (with ``subprotocol`` and ``headers``),
``websocket.send`` and ``websocket.close`` map to the handshake response, data frames
and a close frame; a close before accept is an HTTP 403. A send after the peer left
raises ``OSError`` (Starlette turns it into ``WebSocketDisconnect``). Inbound messages
are bounded: past :data:`INBOX_MAX` waiting for the app, the socket stops reading.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any
from urllib.parse import unquote

from websockets.http11 import Request

log = logging.getLogger(__name__)

INBOX_MAX = 64
RESTARTING = 1012


class AsgiSocket:
    """One WebSocket of the ASGI app on the front."""

    def __init__(self, proto: Any, app: Any, app_state: dict[str, Any], request: Request,
                 path: str, query: str) -> None:
        """``proto``: the :class:`livespace.front.FrontProtocol` it runs on."""
        self.proto = proto
        self.request = request
        self.accepted = False
        self.closed = False  # this side sent a close (or refused the handshake)
        self.ended = False
        self.inbox: deque[dict[str, Any]] = deque([{"type": "websocket.connect"}])
        self._waiter: asyncio.Future[None] | None = None
        transport = proto.transport
        sockname = transport.get_extra_info("sockname") if transport else None
        peername = transport.get_extra_info("peername") if transport else None
        offered = [p.strip() for value in request.headers.get_all("Sec-WebSocket-Protocol")
                   for p in value.split(",") if p.strip()]
        scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": tuple(sockname[:2]) if isinstance(sockname, tuple) else None,
            "client": tuple(peername[:2]) if isinstance(peername, tuple) else None,
            "root_path": "",
            "path": unquote(path),
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in request.headers.raw_items()],
            "subprotocols": offered,
            "state": dict(app_state),
            "extensions": {},
        }
        self.task = asyncio.get_running_loop().create_task(self._run(app, scope))

    async def _run(self, app: Any, scope: dict[str, Any]) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception:
            log.exception("WebSocket application failed on %s", scope["path"])
            if not self.accepted:
                self.proto.reject(500, "Internal server error.\n")
            elif not self.closed:
                self.closed = True
                self.proto.close(1011, "internal error")
            return
        if not self.accepted and not self.closed:
            self.proto.reject(500, "The application did not accept the WebSocket.\n")
        elif not self.closed:
            self.closed = True
            self.proto.close(1000)

    # ---- ASGI receive / send ------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        while not self.inbox:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        message = self.inbox.popleft()
        if len(self.inbox) == INBOX_MAX // 2:
            self.proto.resume_reading()
        return message

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        proto = self.proto
        if kind == "websocket.accept":
            if self.accepted or self.closed:
                raise RuntimeError("websocket.accept after the handshake")
            self.accepted = True
            if not proto.accept(self.request, message.get("subprotocol"),
                                message.get("headers")):
                self._push({"type": "websocket.disconnect", "code": 1006})
        elif kind == "websocket.send":
            if not self.accepted:
                raise RuntimeError("websocket.send before websocket.accept")
            if self.ended or self.closed or proto.gone:
                raise OSError("the WebSocket is closed")
            data = message.get("bytes")
            if data is not None:
                proto.send_binary(data)
            else:
                proto.write_text(str(message.get("text") or "").encode())
            await proto.drained()
        elif kind == "websocket.close":
            if self.closed:
                return
            self.closed = True
            if not self.accepted:
                proto.reject(403, "Forbidden.\n")
                self._end(1006)
            else:
                proto.close(int(message.get("code") or 1000), str(message.get("reason") or ""))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    # ---- Handler ------------------------------------------------------------------------

    def on_message(self, data: str | bytes) -> None:
        if self.closed:
            return  # the app closed: what still arrives is not for it
        if isinstance(data, str):
            self._push({"type": "websocket.receive", "text": data})
        else:
            self._push({"type": "websocket.receive", "bytes": data})
        if len(self.inbox) >= INBOX_MAX:
            self.proto.pause_reading()

    def on_end(self, code: int) -> None:
        self._end(code)

    def drain(self) -> None:
        """The node stops: close with 1012 (the app sees a disconnect)."""
        if self.accepted and not self.closed:
            self.closed = True
            self.proto.close(RESTARTING, "server restarting")
        self._end(RESTARTING)

    def _end(self, code: int) -> None:
        if self.ended:
            return
        self.ended = True
        self._push({"type": "websocket.disconnect", "code": code})

    def _push(self, message: dict[str, Any]) -> None:
        self.inbox.append(message)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
