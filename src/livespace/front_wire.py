"""The writing side of a front connection: what :class:`~livespace.wire.Wire` asks of it,
flow control, keep-alive and its end (a mixin of :class:`~livespace.front.FrontProtocol`,
which owns the reading side and the handshake)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Protocol

from websockets.protocol import State
from websockets.server import ServerProtocol

from livespace.wire import text_frame

log = logging.getLogger("livespace.front")

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class Handler(Protocol):
    """What a routed socket's messages go to."""

    def on_message(self, data: str | bytes) -> None: ...

    def on_end(self, code: int) -> None:
        """Called once: the peer closed (its code), or the connection was lost (1006)."""
        ...


class FrontWire:
    """State the reading side sets, and everything that writes to the transport."""

    __slots__ = ("_drain", "_ended", "handler", "live", "paused", "pinged", "seen",
                 "transport", "ws")
    ws: ServerProtocol
    transport: asyncio.Transport | None
    handler: Handler | None
    live: bool
    paused: bool
    seen: bool
    pinged: bool
    _ended: bool
    _drain: asyncio.Future[None] | None

    # ---- Wire ---------------------------------------------------------------------------

    @property
    def plain(self) -> bool:
        return not self.ws.extensions

    @property
    def writable(self) -> bool:
        return self.live and not self.paused

    @property
    def gone(self) -> bool:
        return not self.live

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def write_text(self, payload: bytes) -> None:
        if self.plain:
            self.write(text_frame(payload))
        else:
            self.ws.send_text(payload)
            self.flush()

    def send_binary(self, payload: bytes) -> None:
        self.ws.send_binary(payload)
        self.flush()

    def close(self, code: int, reason: str = "") -> None:
        self.live = False
        if self.ws.state is State.OPEN:
            self.ws.send_close(code, reason[:120])
            self.flush()
        # the peer's close frame must be read, whatever a handler paused for
        self.resume_reading()

    def fail(self, code: int, reason: str = "") -> None:
        self.live = False
        self.ws.fail(code, reason)
        self.flush()
        self._end()

    def abort(self) -> bool:
        transport = self.transport
        if transport is None or (self._ended and transport.is_closing()):
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()
        return True

    async def drained(self) -> None:
        if not self.paused or self._ended:
            return
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._drain)

    def _release_drain(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # ---- flow, keep-alive, end ----------------------------------------------------------

    def flush(self) -> None:
        """Write what the protocol produced (pongs, close frames); close on its EOF."""
        transport = self.transport
        if transport is None:
            return
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            else:
                transport.close()

    def pause_reading(self) -> None:
        """A handler's backpressure; ignored once closing (the close must be read)."""
        if self.transport is not None and self.live:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self._ended:
            self.transport.resume_reading()

    def beat(self) -> None:
        """The node's keep-alive sweep: ping what was quiet for a beat, drop what stayed
        quiet after the ping."""
        if self.seen:
            self.seen = False
            self.pinged = False
            return
        if self.ws.state is not State.OPEN:
            return
        if self.pinged:
            log.info("%s - WebSocket peer did not answer a ping: dropped", self.peer)
            self.abort()
            return
        self.pinged = True
        self.ws.send_ping(b"")
        self.flush()

    @property
    def peer(self) -> str:
        transport = self.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"

    @property
    def peer_close_code(self) -> int:
        rcvd = self.ws.close_rcvd
        return int(rcvd.code) if rcvd is not None else 1006

    def _end(self) -> None:
        self.live = False
        if self._ended:
            return
        self._ended = True
        if self.handler is not None:
            self.handler.on_end(self.peer_close_code)
