"""The servers under test: livespace and the two baselines, each a subprocess on core 0.

Each server gets a free port, its own temporary data directory and, for livespace, its
own database (a SQLite file in the data directory, or a fresh PostgreSQL database that is
dropped afterwards). The server's output goes to a log file whose tail is shown when it
fails to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: The servers ``--servers`` accepts; the baselines are scripts in ``bench/baselines/``.
SERVERS = ("livespace", "fastapi", "websockets")
BASELINE_SCRIPTS = {
    "fastapi": "fastapi_manager.py",
    "websockets": "websockets_broadcast.py",
}
DATABASES = ("sqlite", "postgres")
SERVER_CORE = 0
GENERATOR_CORE = 1

#: Limits that are policy, not capacity: lifted so that the benchmark measures the hot path
#: (one publisher sends thousands of frames/s; setup adds thousands of members over REST).
LIFTED_LIMITS = {
    "LIVESPACE_RATE_LIMIT": "1000000",
    "LIVESPACE_USER_RATE_LIMIT": "1000000",
    "LIVESPACE_HTTP_RATE_LIMIT": "1000000",
    "LIVESPACE_MAX_CONNECTIONS_PER_USER": "100000",
    "LIVESPACE_MAX_CONNECTIONS_PER_WORKSPACE": "100000",
}


class ServerError(RuntimeError):
    """A server under test did not start or died; the message has its log's tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def repo_root() -> Path:
    """The source checkout this tool runs from (``bench/`` is not part of the wheel)."""
    return Path(__file__).resolve().parents[1]


def pin_prefix(core: int, enabled: bool, nice: int = 0) -> list[str]:
    """``taskset -c CORE`` when pinning is on and possible, and ``nice -n N`` when asked."""
    prefix: list[str] = []
    if enabled and shutil.which("taskset") is not None and (os.cpu_count() or 1) > core:
        prefix += ["taskset", "-c", str(core)]
    if nice and shutil.which("nice") is not None:
        prefix += ["nice", "-n", str(nice)]
    return prefix


def set_group_nice(pid: int, nice: int) -> None:
    """Give ``pid``'s autogroup the niceness ``nice``.

    With ``kernel.sched_autogroup_enabled`` the scheduler first shares the CPU between
    sessions and applies ``nice`` only inside one: a niced process in its own session
    (``start_new_session``) only wins the core once its session's group is reniced.
    """
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")


def livespace_command() -> list[str]:
    script = Path(sys.executable).with_name("livespace")
    if script.exists():
        return [str(script)]
    found = shutil.which("livespace")
    if found:
        return [found]
    return [sys.executable, "-m", "livespace.cli"]


@dataclass
class Server:
    """A running server under test."""

    kind: str
    port: int
    pid: int
    secret: str
    database: str | None
    log_path: Path
    process: asyncio.subprocess.Process = field(repr=False)
    pg_database: str | None = None  # the PostgreSQL database's name, when there is one

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def label(self) -> str:
        if self.kind == "livespace" and self.database:
            return f"livespace ({self.database})"
        return self.kind

    def alive(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database (URL), dropped on exit."""
    name = f"livespace_bench_{uuid.uuid4().hex[:12]}"
    await _pg_admin(admin_url, f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with contextlib.suppress(Exception):
            await _pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not server.alive():
                raise ServerError(
                    f"{server.label} exited with {server.process.returncode} while starting; "
                    f"its log ({server.log_path}):\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"{server.http_url}/ws/health")
                if response.status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise ServerError(
        f"{server.label} did not answer /ws/health within {timeout:.0f} s; "
        f"its log ({server.log_path}):\n{server.log_tail()}"
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def run_server(
    kind: str,
    *,
    database: str = "sqlite",
    pg_admin_url: str,
    pin: bool = True,
    nice: int = 0,
    keep_logs: Path | None = None,
    startup_timeout: float = 60.0,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Server]:
    """Start ``kind`` pinned to core 0 on a free port; stop it (and drop its database) on exit.

    ``database_url``: a database to use as it is (several nodes of one cluster), instead
    of a fresh one; ``extra_env``: more environment (``REDIS_URL`` for a cluster).
    """
    if kind not in SERVERS:
        raise ValueError(f"unknown server {kind!r}; choose from {', '.join(SERVERS)}")
    secret = (extra_env or {}).get("JWT_SECRET") or secrets.token_urlsafe(48)
    async with contextlib.AsyncExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lsbench-")))
        env = {**os.environ, "JWT_SECRET": secret, "PYTHONUNBUFFERED": "1"}
        env.pop("REDIS_URL", None)
        port = free_port()
        db_label: str | None = None
        pg_name: str | None = None
        env.update(extra_env or {})
        if kind == "livespace":
            if database_url is not None:
                env["DATABASE_URL"] = database_url
            elif database == "postgres":
                env["DATABASE_URL"] = await stack.enter_async_context(
                    postgres_database(pg_admin_url)
                )
                pg_name = env["DATABASE_URL"].rpartition("/")[2]
            elif database == "sqlite":
                env["DATABASE_URL"] = f"sqlite:///{data_dir / 'livespace.db'}"
            else:
                raise ValueError(f"unknown database {database!r}")
            db_label = database
            env["LIVESPACE_DATA_DIR"] = str(data_dir / "data")
            env.update(LIFTED_LIMITS)
            argv = [*livespace_command(), "serve", "--port", str(port)]
        else:
            root = repo_root()
            if root is None:
                raise ServerError("the baselines live in bench/baselines/ of a source checkout")
            script = root / "bench" / "baselines" / BASELINE_SCRIPTS[kind]
            argv = [sys.executable, str(script), "--port", str(port)]
        log_dir = keep_logs if keep_logs is not None else data_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{kind}-{db_label or 'mem'}-{port}.log"
        log = stack.enter_context(log_path.open("wb"))
        process = await asyncio.create_subprocess_exec(
            *pin_prefix(SERVER_CORE, pin, nice),
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=bool(nice),
        )
        if nice:
            set_group_nice(process.pid, nice)
        server = Server(kind, port, process.pid, secret, db_label, log_path, process, pg_name)
        try:
            await _wait_healthy(server, startup_timeout)
            yield server
        finally:
            await _stop(process)
