"""Setup through the public contract: tokens, a workspace, its members, socket URLs.

Tokens are HS256 JWTs signed with the secret the benchmark gave the server it started.
On livespace the workspace is made with ``POST /api/workspaces`` (owner token) and each
member added with ``PUT /api/workspaces/{id}/members/{user_id}``; the baselines have no
REST API and accept any workspace id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import jwt

from bench.servers import Server

TOKEN_TTL_S = 6 * 3600
SETUP_CONCURRENCY = 32


def mint(secret: str, user_id: str) -> str:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "name": f"Bench {user_id}",
        "email": f"{user_id}@bench.example",
        "iat": now,
        "exp": now + TOKEN_TTL_S,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class Workspace:
    """A workspace on a server under test, its owner and members, with their tokens."""

    server: Server
    id: str
    owner: str
    members: list[str]
    tokens: dict[str, str]

    def socket_url(self, user_id: str, *, batch: bool = False, since: int | None = None) -> str:
        query: dict[str, str] = {"token": self.tokens[user_id]}
        if batch:
            query["batch"] = "1"
        if since is not None:
            query["since"] = str(since)
        return f"{self.server.ws_url}/ws/workspace/{self.id}?{urlencode(query)}"

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user_id]}"}


class SetupError(RuntimeError):
    """The server refused a setup request; the message has the status and body."""


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise SetupError(f"{what}: HTTP {response.status_code} {response.text[:300]}")


async def create_workspace(
    server: Server,
    members: int,
    *,
    name: str = "bench",
    prefix: str = "u",
    progress: Callable[[str], None] | None = None,
) -> Workspace:
    """A workspace owned by ``<prefix>-owner`` with ``members`` members (role member)."""
    owner = f"{prefix}-owner"
    member_ids = [f"{prefix}-{i:05d}" for i in range(members)]
    tokens = {user: mint(server.secret, user) for user in [owner, *member_ids]}
    if server.kind != "livespace":
        return Workspace(server, f"{name}-{prefix}", owner, member_ids, tokens)
    limits = httpx.Limits(max_connections=SETUP_CONCURRENCY, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=60.0, limits=limits) as http:
        owner_auth = {"Authorization": f"Bearer {tokens[owner]}"}
        response = await http.post("/api/workspaces", json={"name": name}, headers=owner_auth)
        _check(response, "POST /api/workspaces")
        workspace_id = str(response.json()["id"])
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        done = 0
        started = time.monotonic()
        last_report = started

        async def add(user: str) -> None:
            nonlocal done, last_report
            async with gate:
                response = await http.put(
                    f"/api/workspaces/{workspace_id}/members/{user}",
                    json={"role": "member"},
                    headers=owner_auth,
                )
            _check(response, f"PUT member {user}")
            done += 1
            now = time.monotonic()
            if progress is not None and now - last_report >= 2.0:
                last_report = now
                progress(f"added {done:,}/{members:,} members ({done / (now - started):,.0f}/s)")

        await asyncio.gather(*(add(user) for user in member_ids))
    return Workspace(server, workspace_id, owner, member_ids, tokens)


async def create_contacts(
    workspace: Workspace,
    count: int,
    *,
    writers: int = 16,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Insert ``count`` contacts over REST (``writers`` concurrent requests); the head seq."""
    limits = httpx.Limits(max_connections=writers, max_keepalive_connections=writers)
    users = [workspace.owner, *workspace.members] or [workspace.owner]
    head = 0
    next_index = 0
    started = time.monotonic()
    last_report = started
    async with httpx.AsyncClient(
        base_url=workspace.server.http_url, timeout=60.0, limits=limits
    ) as http:

        async def writer(slot: int) -> None:
            nonlocal head, next_index, last_report
            user = users[slot % len(users)]
            headers = workspace.auth(user)
            while next_index < count:
                index = next_index
                next_index += 1
                response = await http.post(
                    f"/api/workspaces/{workspace.id}/contacts",
                    json={"name": f"Replay {index}", "company": "Bench Inc"},
                    headers=headers,
                )
                _check(response, "POST contact")
                seq = response.json().get("seq")
                if isinstance(seq, int):
                    head = max(head, seq)
                now = time.monotonic()
                if progress is not None and now - last_report >= 2.0:
                    last_report = now
                    rate = next_index / (now - started)
                    progress(f"created {next_index:,}/{count:,} contacts ({rate:,.0f}/s)")

        await asyncio.gather(*(writer(slot) for slot in range(writers)))
    return head
