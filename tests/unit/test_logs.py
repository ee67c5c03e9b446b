"""uvicorn's per-socket INFO chatter is dropped; everything else passes."""

from __future__ import annotations

import logging

from livespace.logs import SocketChatter


def record(msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", level, __file__, 1, msg, (), None)


def test_socket_chatter_is_dropped_and_the_rest_kept():
    quiet = SocketChatter()
    assert not quiet.filter(record("connection open"))
    assert not quiet.filter(record("connection closed"))
    assert not quiet.filter(record('%s - "WebSocket %s" [accepted]'))
    assert quiet.filter(record('%s - "WebSocket %s" 403'))
    assert quiet.filter(record("connection closed", logging.WARNING))
    assert quiet.filter(record("Uvicorn running on %s://%s:%d (Press CTRL+C to quit)"))
