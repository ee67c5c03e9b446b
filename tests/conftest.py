"""Shared fixtures: a PostgreSQL database and a Redis key prefix of this test run's own.

The services are real (this machine kind starts them); when one is unreachable the run
fails with how to start it. Nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from livespace.store import open_store
from livespace.store.sql import SqlStore
from services import (
    PG_ADMIN_URL,
    PG_HOW,
    REDIS_HOW,
    REDIS_TEST_URL,
    RUN_ID,
    _pg_admin,
    _pg_url_for,
    _redis_check,
    _redis_drop,
)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """Admin URL of the machine's PostgreSQL; fails the run with a hint if it is down."""
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as err:
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


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """A migrated store on each engine (one test run per engine), closed after the test."""
    opened = await open_store(database_url)
    assert isinstance(opened, SqlStore)
    await opened.migrate()
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
def redis_server() -> str:
    try:
        asyncio.run(_redis_check(REDIS_TEST_URL))
    except Exception as err:
        pytest.fail(REDIS_HOW.format(url=REDIS_TEST_URL, err=err), pytrace=False)
    return REDIS_TEST_URL


@pytest.fixture
def redis_prefix(redis_server: str) -> Iterator[str]:
    """A key/channel prefix of this test's own; its keys are deleted after the test."""
    prefix = f"lstest:{RUN_ID}:{uuid.uuid4().hex[:8]}"
    yield prefix
    asyncio.run(_redis_drop(redis_server, prefix))
