"""How tests reach the machine's PostgreSQL and Redis (importable: tests/ is on pythonpath)."""

from __future__ import annotations

import os
import uuid

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


