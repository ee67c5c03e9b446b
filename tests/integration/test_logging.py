"""``livespace serve --log-level`` is honoured (uvicorn's log config no longer resets it)
and ``LIVESPACE_LOG_FORMAT=json`` writes one JSON object per line, audit records with
their fields, tokens masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Server

pytestmark = pytest.mark.integration


def server(tmp_path: Path, sqlite_url: str, *args: str, **env: str) -> Server:
    made = Server(tmp_path / "srv", sqlite_url, **env)
    made.args = list(args)
    return made.start()


async def test_log_level_warning_keeps_info_out(tmp_path: Path, sqlite_url: str) -> None:
    quiet = server(tmp_path, sqlite_url, "--log-level", "WARNING")
    try:
        ws = await quiet.workspace("alice")
        client = await quiet.connect(ws, "alice")
        await client.close()
        await quiet.connect(ws, "alice", since=0)
    finally:
        quiet.stop()
    logs = quiet.logs()
    assert "socket opened" not in logs and " INFO " not in logs, logs[-2000:]


async def test_json_logs_are_one_object_per_line_with_audit_fields(
        tmp_path: Path, sqlite_url: str) -> None:
    loud = server(tmp_path, sqlite_url, LIVESPACE_LOG_FORMAT="json")
    try:
        ws = await loud.workspace("alice")
        token = loud.token("alice")
        client = await loud.connect(ws, "alice")
        await client.close()
        async with loud.api("alice") as api:
            await api.get(f"/ws/workspace/{ws}/users", params={"token": token})
    finally:
        loud.stop()
    records = [json.loads(line) for line in loud.logs().splitlines()
               if line.startswith("{")]
    assert records and all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    opened = [r for r in records if r["message"].startswith("socket opened")]
    assert opened and opened[0]["logger"] == "livespace.audit"
    assert opened[0]["user"] == "alice" and opened[0]["workspace"] == ws
    assert token.rsplit(".", 1)[1] not in loud.logs()
    non_json = [line for line in loud.logs().splitlines()
                if line.strip() and not line.startswith("{")]
    assert non_json == [], non_json[:5]
