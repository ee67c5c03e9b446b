"""The app in this process: FastAPI over httpx's ASGI transport, on a real SQLite file.

No server process, no port: a test drives the HTTP routes as a client would and reads
the node's state directly where it needs to. A test module uses it with
``from inprocess import app  # noqa: F401 - fixture``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from livespace.app import create_app
from livespace.config import Settings
from livespace.node import Node

SECRET = "in-process-test-secret-" + "x" * 32


@dataclass
class App:
    """A started app and an HTTP client for it; ``as_(user)`` gives that user's headers."""

    http: httpx.AsyncClient
    node: Node

    def token(self, user: str, **claims: Any) -> str:
        return self.node.verifier.mint(user, name=user.title(), email=f"{user}@example.com",
                                       extra=claims or None)

    def as_(self, user: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}", **headers}

    async def workspace(self, owner: str, *members: str, role: str = "member") -> str:
        """A new workspace of ``owner`` with ``members`` in ``role``; its id."""
        created = await self.http.post("/api/workspaces", json={"name": "Acme"},
                                       headers=self.as_(owner))
        assert created.status_code == 201, created.text
        workspace_id: str = created.json()["id"]
        for member in members:
            added = await self.http.put(f"/api/workspaces/{workspace_id}/members/{member}",
                                        json={"role": role}, headers=self.as_(owner))
            assert added.status_code == 200, added.text
        return workspace_id


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir}/livespace.db",
                        jwt_secret=SECRET, http_rate_limit=1000.0)
    return Settings(**{**settings.__dict__, **overrides})


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    application = create_app(settings_for(tmp_path))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://livespace.test") as http:
            yield App(http, application.state.node)
