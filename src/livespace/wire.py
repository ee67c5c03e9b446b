"""Frames on the wire: what a connection writes to its socket.

Every workspace socket is served by :mod:`livespace.front`, which writes pre-encoded
frames straight to the TCP transport: an event's frame is encoded once and each
connection gets one ``transport.write`` per event loop tick for everything queued to it
in that tick. :class:`Wire` is what :class:`livespace.connection.Connection` needs of a
socket; flow control stays the transport's (while the kernel buffer is full, frames wait
in the connection's bounded outbox).
"""

from __future__ import annotations

import struct
from typing import Protocol

_SHORT = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame carrying ``payload`` (server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return _SHORT.pack(0x81, 126, n) + payload
    return _LONG.pack(0x81, 127, n) + payload


class Wire(Protocol):
    """One open WebSocket, as a connection writes to it."""

    @property
    def plain(self) -> bool:
        """True when frames may be written pre-encoded (no per-connection compression)."""
        ...

    @property
    def writable(self) -> bool:
        """True while the kernel takes more data (not paused) and the socket is open."""
        ...

    @property
    def gone(self) -> bool:
        """True once a close frame was sent or the TCP connection is lost."""
        ...

    def write(self, data: bytes) -> None:
        """Write pre-encoded frames (only when :attr:`plain`)."""
        ...

    def write_text(self, payload: bytes) -> None:
        """Write one text message, encoded (and compressed) for this socket."""
        ...

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame after what was written; the TCP connection follows."""
        ...

    def abort(self) -> bool:
        """Drop the TCP connection now; False when it was already gone."""
        ...

    async def drained(self) -> None:
        """Wait until the transport accepts data again (or the socket is gone)."""
        ...
