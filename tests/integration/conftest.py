"""A real livespace server in a subprocess on a free port, and clients for it."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from livespace.client import Client
from services import RUN_ID, _pg_admin, _pg_url_for

LIVESPACE = str(Path(sys.executable).parent / "livespace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``livespace serve`` on 127.0.0.1:<free port> with its own data dir and database."""

    def __init__(self, data_dir: Path, database_url: str, **env: str) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.secret = secrets.token_urlsafe(48)
        self.port = free_port()
        self.env = {
            **os.environ,
            "JWT_SECRET": self.secret,
            "DATABASE_URL": database_url,
            "LIVESPACE_DATA_DIR": str(data_dir),
            "LIVESPACE_NODE_ID": f"test-{self.port}",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"server-{self.port}.log"
        self.args: list[str] = []  # more `livespace serve` options

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [LIVESPACE, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 *self.args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.http}/ws/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def restart(self) -> Server:
        self.stop()
        return self.start()

    def logs(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    # ---- identities ---------------------------------------------------------------------

    def token(self, user: str, *, ttl: float = 3600, name: str | None = None,
              secret: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"sub": user, "name": name or user.title(), "email": f"{user}@example.com",
                   "iat": now, "exp": now + ttl, **claims}
        return jwt.encode(payload, secret or self.secret, algorithm="HS256")

    def api(self, user: str, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.http, timeout=30,
                                 headers={"Authorization": f"Bearer {self.token(user, **kw)}"})

    async def workspace(self, owner: str, *members: str, viewers: tuple[str, ...] = ()) -> str:
        """A new workspace owned by ``owner`` with ``members`` (and ``viewers``)."""
        async with self.api(owner) as api:
            r = await api.post("/api/workspaces", json={"name": f"ws-{uuid.uuid4().hex[:6]}"})
            assert r.status_code == 201, r.text
            ws_id = str(r.json()["id"])
            for role, users in (("member", members), ("viewer", viewers)):
                for user in users:
                    r = await api.put(f"/api/workspaces/{ws_id}/members/{user}",
                                      json={"role": role})
                    assert r.status_code == 200, r.text
        return ws_id

    async def events(self, user: str, ws_id: str) -> list[dict[str, Any]]:
        """The workspace's whole kept log, read page by page over HTTP as ``user``."""
        out: list[dict[str, Any]] = []
        async with self.api(user) as api:
            since = 0
            while True:
                page = (await api.get(f"/api/workspaces/{ws_id}/events",
                                      params={"since": since, "limit": 1000})).json()
                out += page["events"]
                if not page["has_more"]:
                    return out
                since = page["events"][-1]["seq"]

    async def connect(self, ws_id: str, user: str, **kw: Any) -> Client:
        token_kw = {k: kw.pop(k) for k in ("ttl", "name") if k in kw}
        return await Client.connect(self.ws, ws_id, self.token(user, **token_kw), **kw)


def _admin(sql: str) -> None:
    """Run an admin statement, also from inside a test's running event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _pg_admin(sql)).result()


def _pg_create(admin_url: str) -> str:
    name = f"livespace_srv_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    return _pg_url_for(name)


def _pg_drop(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ServerFactory:
    """Starts servers on a chosen engine; stops them and drops their databases after."""

    def __init__(self, engine: str, tmp: Path, pg_admin: str | None) -> None:
        self.engine = engine
        self.tmp = tmp
        self.pg_admin = pg_admin
        self.servers: list[Server] = []
        self.databases: list[str] = []

    def database(self) -> str:
        if self.engine == "sqlite":
            path = self.tmp / f"db-{uuid.uuid4().hex[:8]}" / "livespace.db"
            return f"sqlite:///{path}"
        assert self.pg_admin is not None
        url = _pg_create(self.pg_admin)
        self.databases.append(url)
        return url

    def __call__(self, database_url: str | None = None, **env: str) -> Server:
        server = Server(self.tmp / f"srv-{uuid.uuid4().hex[:8]}", database_url or self.database(),
                        **env)
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for url in self.databases:
            _pg_drop(url)


#: Fixtures that start a server process: a test using one is in the slow tier.
PROCESS_FIXTURES = frozenset({"servers", "server"})


def starts_processes(item: pytest.Item) -> bool:
    """A test is slow if it uses a server fixture, or its module holds the server harness
    or ``subprocess`` (it starts processes itself)."""
    if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    held = vars(module).values() if module is not None else ()
    return any(value is Server or value is subprocess for value in held)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if starts_processes(item):
            item.add_marker(pytest.mark.slow)


#: For a socket test whose outcome the store's engine does not change (tokens, presence,
#: typing, frame checks): SQLite only. The store's own contract suite, and the socket
#: tests of what is stored, run on both engines.
SQLITE_ONLY = pytest.mark.parametrize("engine", ["sqlite"], indirect=True, scope="module")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def servers(engine: str, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    pg_admin = request.getfixturevalue("pg_server") if engine == "postgres" else None
    factory = ServerFactory(engine, tmp_path_factory.mktemp(f"servers-{engine}"), pg_admin)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    """One server per test module and engine (tests use fresh workspaces for isolation)."""
    return servers()


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    """Collects clients a test opens and closes them after it."""
    opened: list[Client] = []
    yield opened
    await asyncio.gather(*(client.close() for client in opened), return_exceptions=True)
