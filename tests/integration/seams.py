"""Fixtures shared by the contract suites of the Broker and Presence seams."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["memory", "redis"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_target(engine: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(URL, prefix) for the Redis engine; resolved outside the event loop."""
    if engine != "redis":
        return "", ""
    return request.getfixturevalue("redis_server"), request.getfixturevalue("redis_prefix")
