"""Shared fixtures: a PostgreSQL database and a Redis key prefix of this test run's own.

The services are real (this machine kind starts them); when one is unreachable the run
fails with how to start it. Nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN_URL = os.environ.get("LIVESPACE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("LIVESPACE_TEST_REDIS", "redis://127.0.0.1:6379/0")

PG_HOW = (
    "PostgreSQL is not reachable at {url} ({err}). Start it with: "
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)
REDIS_HOW = (
    "Redis is not reachable at {url} ({err}). Start it with: redis-server --daemonize yes "
    "--bind 127.0.0.1 --port 6379 --save '' --appendonly no"
)

RUN_ID = uuid.uuid4().hex[:10]


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_url_for(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Admin URL of the machine's PostgreSQL; fails the run with a hint if it is down."""
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as err:  # noqa: BLE001 - any failure means "not reachable"
        pytest.fail(PG_HOW.format(url=PG_ADMIN_URL, err=err), pytrace=False)
    yield PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped after it."""
    name = f"livespace_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url_for(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{os.fspath(tmp_path)}/livespace.db"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


async def _redis_check(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _redis_drop(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_server() -> str:
    try:
        asyncio.run(_redis_check(REDIS_TEST_URL))
    except Exception as err:  # noqa: BLE001
        pytest.fail(REDIS_HOW.format(url=REDIS_TEST_URL, err=err), pytrace=False)
    return REDIS_TEST_URL


@pytest.fixture
def redis_prefix(redis_server: str) -> Iterator[str]:
    """A key/channel prefix of this test's own; its keys are deleted after the test."""
    prefix = f"lstest:{RUN_ID}:{uuid.uuid4().hex[:8]}"
    yield prefix
    asyncio.run(_redis_drop(redis_server, prefix))
