"""Writing WebSocket frames straight to the socket: the fan-out hot path.

uvicorn speaks WebSocket through ASGI, one ``await send()`` per message per connection.
For fan-out that is the expensive part: a task switch and a frame encoding per recipient.
:class:`LivespaceWebSocketProtocol` is uvicorn's own sans-I/O WebSocket protocol that also
hands itself to the application (``scope["extensions"]["livespace.raw"]``), so that a
connection can write pre-encoded frames to its transport directly: an event's frame is
encoded once and each connection gets one ``transport.write`` per event loop tick for
everything queued to it in that tick. Flow control stays the transport's: while the
kernel buffer is full (``pause_writing``) frames wait in the connection's bounded outbox.

Permessage-deflate is not negotiated (``ws_per_message_deflate=False``): frames written
here are plain text frames.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

RAW_EXTENSION = "livespace.raw"
_SHORT = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame carrying ``payload`` (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return _SHORT.pack(0x81, 126, n) + payload
    return _LONG.pack(0x81, 127, n) + payload


class LivespaceWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, reachable from the app for direct writes."""

    async def run_asgi(self) -> None:
        self.scope["extensions"][RAW_EXTENSION] = self  # type: ignore[assignment]
        await super().run_asgi()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # the handshake's request and response are not needed again: an idle
            # connection should hold as little as possible
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]

    def send_receive_event_to_app(self) -> None:
        """A text frame that is not UTF-8 closes with 1007 as in uvicorn, but with one
        INFO line: uvicorn logs a traceback at ERROR for each, which lets any client fill
        the log."""
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                data.decode()
            except UnicodeDecodeError:
                self.frames = []
                self.logger.info("%s:%s - WebSocket text frame not UTF-8: closing with 1007",
                                 *(self.client or ("-", 0)))
                self.conn.send_close(1007, "text frames must be UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()


class RawSocket:
    """Direct access to one accepted WebSocket's transport."""

    __slots__ = ("_proto",)

    def __init__(self, proto: Any) -> None:
        self._proto = proto

    @classmethod
    def of(cls, scope: Any) -> RawSocket | None:
        """The raw socket of an ASGI scope, when served by our protocol without compression."""
        proto = (scope.get("extensions") or {}).get(RAW_EXTENSION)
        if proto is None or getattr(proto.conn, "extensions", None):
            return None
        return cls(proto)

    @property
    def writable(self) -> bool:
        """True while the kernel takes more data (not paused) and the socket is open."""
        proto = self._proto
        return proto.writable.is_set() and not proto.close_sent and not proto.disconnected

    @property
    def gone(self) -> bool:
        proto = self._proto
        return bool(proto.close_sent or proto.disconnected)

    def write(self, data: bytes) -> None:
        self._proto.transport.write(data)

    def abort(self) -> bool:
        """Drop the TCP connection now with a reset, discarding what the peer has not
        taken (the kernel's send queue too: a plain close would keep delivering it to a
        peer that may never read); False when it was already gone."""
        transport = self._proto.transport
        if transport is None or self._proto.disconnected:
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()
        return True

    async def drained(self) -> None:
        """Wait until the transport accepts data again (or the socket is gone)."""
        await self._proto.writable.wait()

    def buffered(self) -> int:
        transport = self._proto.transport
        return int(transport.get_write_buffer_size()) if transport is not None else 0
