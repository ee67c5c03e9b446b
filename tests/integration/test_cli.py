"""The installed ``livespace`` console script, run as a user would, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from livespace.protocol import validate
from livespace.store import Actor, open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # starts processes itself

_SCRIPT = shutil.which("livespace", path=str(Path(sys.executable).parent))


class Cli:
    def __init__(self, data_dir: Path, database_url: str) -> None:
        assert _SCRIPT is not None, "the livespace console script is not installed (make install)"
        self.data_dir = data_dir
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JWT_", "LIVESPACE_", "DATABASE_", "REDIS_"))
        }
        self.env.update(LIVESPACE_DATA_DIR=str(data_dir), DATABASE_URL=database_url)

    def run(
        self, *args: str, ok: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert _SCRIPT is not None
        done = subprocess.run(
            [_SCRIPT, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    def json(self, *args: str) -> dict[str, object]:
        value = json.loads(self.run(*args).stdout)
        assert isinstance(value, dict)
        return value

    def user_error(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = self.run(*args, ok=False, env=env)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert done.stderr.startswith("livespace: error: "), done.stderr
        return done.stderr


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    return Cli(tmp_path / "data", database_url)


def _roles(database_url: str, workspace_id: str, *users: str) -> list[str | None]:
    async def go() -> list[str | None]:
        store = await open_store(database_url)
        try:
            return [await store.role_of(workspace_id, user) for user in users]
        finally:
            await store.close()

    return asyncio.run(go())


def test_migrate_then_up_to_date(cli: Cli) -> None:
    first = cli.run("migrate").stdout
    assert first.startswith("applied ")
    assert cli.run("migrate").stdout.strip() == "up to date"


def test_workspace_and_members(cli: Cli, database_url: str) -> None:
    workspace = cli.json("workspace", "create", "Acme CRM", "--owner", "alice")
    assert workspace["name"] == "Acme CRM"
    ws = workspace["id"]
    assert isinstance(ws, str) and ws

    member = cli.json("member", "add", ws, "bob", "--role", "viewer")
    assert (member["workspace_id"], member["user_id"], member["role"]) == (ws, "bob", "viewer")
    assert cli.json("member", "add", ws, "carol")["role"] == "member"
    assert cli.json("member", "add", ws, "bob", "--role", "admin")["role"] == "admin"
    assert _roles(database_url, ws, "alice", "bob", "carol", "dave") == [
        "owner", "admin", "member", None
    ]

    removed = cli.run("member", "remove", ws, "carol")
    assert json.loads(removed.stdout)["removed"] is True
    assert "DELETE /api/workspaces/" in removed.stderr  # how to revoke live sockets
    assert _roles(database_url, ws, "carol") == [None]

    assert "not a member" in cli.user_error("member", "remove", ws, "carol")
    assert "not found" in cli.user_error("member", "add", "no-such-workspace", "bob")
    done = cli.run("member", "add", ws, "bob", "--role", "god", ok=False)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_token_uses_the_data_dir_secret(cli: Cli) -> None:
    token = cli.run(
        "token", "--user", "alice", "--email", "a@example.com", "--name", "Alice", "--ttl", "2h"
    ).stdout.strip()
    secret_file = cli.data_dir / "jwt_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["sub"] == claims["user_id"] == "alice"
    assert (claims["email"], claims["name"]) == ("a@example.com", "Alice")
    assert claims["exp"] - claims["iat"] == 7200

    again = cli.run("token", "--user", "bob").stdout.strip()
    assert secret_file.read_text().strip() == secret  # made once, reused
    assert jwt.decode(again, secret, algorithms=["HS256"])["sub"] == "bob"


def test_token_errors_are_short(cli: Cli) -> None:
    asym = {"JWT_ALGORITHM": "ES256", "JWT_JWKS_URL": "https://idp.example/jwks.json"}
    assert "HS" in cli.user_error("token", "--user", "alice", env=asym)
    assert "JWT_SECRET" in cli.user_error("token", "--user", "a", env={"JWT_SECRET": "short"})
    done = cli.run("token", "--user", "alice", "--ttl", "soon", ok=False)
    assert done.returncode == 2 and "duration" in done.stderr


def test_cleanup_prints_counts(cli: Cli) -> None:
    cli.json("workspace", "create", "Old", "--owner", "alice")
    counts = cli.json("cleanup", "--retention-days", "7")
    for key in ("events_deleted", "refs_deleted", "sessions_deleted"):
        assert counts[key] == 0
    assert counts["retention_days"] == 7
    assert cli.json("cleanup")["retention_days"] == 30
    kept = json.loads(cli.run("cleanup", env={"LIVESPACE_RETENTION_DAYS": "3"}).stdout)
    assert kept["retention_days"] == 3  # the setting, unless --retention-days says otherwise


def test_cleanup_deletes_what_is_older_than_retention(cli: Cli, database_url: str) -> None:
    ws = cli.json("workspace", "create", "Log", "--owner", "alice")["id"]
    assert isinstance(ws, str)
    long_ago = "2000-01-01T00:00:00.000Z"

    async def seed() -> None:
        store = await open_store(database_url)
        try:
            for n in (1, 2):
                mutation = validate("contact_created", {"name": f"Contact {n}"})
                await store.apply(ws, Actor("alice"), mutation, f"ref-{n}")  # type: ignore[arg-type]
            db = store.db  # type: ignore[attr-defined]
            await db.execute("UPDATE events SET created_at = $1 WHERE seq = 1", long_ago)
            await db.execute("UPDATE mutation_refs SET created_at = $1 WHERE seq = 1", long_ago)
        finally:
            await store.close()

    async def oldest() -> int:
        store = await open_store(database_url)
        try:
            return await store.oldest_seq(ws)
        finally:
            await store.close()

    asyncio.run(seed())
    counts = cli.json("cleanup")
    assert (counts["events_deleted"], counts["refs_deleted"]) == (1, 1)
    assert asyncio.run(oldest()) == 2
    assert cli.json("cleanup")["events_deleted"] == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_migrates_shares_the_secret_and_keeps_tokens_out_of_logs(
    cli: Cli, tmp_path: Path
) -> None:
    assert _SCRIPT is not None
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [_SCRIPT, "serve", "--port", str(port)],
            env=cli.env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/ws/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        token = cli.run("token", "--user", "alice").stdout.strip()
        auth = {"authorization": f"Bearer {token}"}
        mine = httpx.get(f"{base}/api/workspaces", headers=auth, timeout=5)
        assert mine.status_code == 200, mine.text  # serve and token share the data-dir secret
        httpx.get(f"{base}/ws/health", params={"token": token}, timeout=5)  # for the log
        assert cli.run("migrate").stdout.strip() == "up to date"  # serve migrated
    finally:
        server.terminate()
        server.wait(15)
    logged = log_path.read_text()
    assert "/ws/health?token=***" in logged
    assert token not in logged
