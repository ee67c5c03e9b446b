"""uvicorn's per-socket INFO chatter is dropped; everything else passes."""

from __future__ import annotations

import logging

from livespace.logs import SocketChatter


def record(msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", level, __file__, 1, msg, (), None)


def test_socket_chatter_is_dropped_and_the_rest_kept() -> None:
    quiet = SocketChatter()
    assert not quiet.filter(record("connection open"))
    assert not quiet.filter(record("connection closed"))
    assert not quiet.filter(record('%s - "WebSocket %s" [accepted]'))
    assert quiet.filter(record('%s - "WebSocket %s" 403'))
    assert quiet.filter(record("connection closed", logging.WARNING))
    assert quiet.filter(record("Uvicorn running on %s://%s:%d (Press CTRL+C to quit)"))


def test_json_formatter_keeps_one_object_per_record_with_audit_fields_and_no_token() -> None:
    import json
    import logging

    from livespace.logs import JsonFormatter

    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLXNlY3JldA"
    record = logging.LogRecord("livespace.audit", logging.INFO, __file__, 1,
                               "socket refused user=%s reason=%r url=%s", (
                                   "bob", f"bad\ntoken {token}", f"/ws?token={token}"), None)
    line = JsonFormatter().format(record)
    assert "\n" not in line and "c2lnbmF0dXJlLXNlY3JldA" not in line
    out = json.loads(line)
    assert (out["level"], out["logger"], out["user"]) == ("INFO", "livespace.audit", "bob")
    assert out["url"] == "/ws?token=***"
    assert out["message"].startswith("socket refused user=bob")
