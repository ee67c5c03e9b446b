"""The SDK's HTTP side: the snapshot (contacts, page by page) and how far behind it is."""

from __future__ import annotations

from typing import Any

import httpx


class LivespaceError(Exception):
    """A mutation refused (``code`` from the error frame), or the client closed for good.
    ``current`` is the contact as it is now, for a ``conflict``."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.details = code, message, details
        self.current = details.get("current") if isinstance(details, dict) else None


class Resync(Exception):
    """The position cannot be resumed: reload the snapshot, then connect at once."""


async def get(http: httpx.AsyncClient, workspace: str, token: str, path: str,
              **params: Any) -> dict[str, Any]:
    r = await http.get(f"/api/workspaces/{workspace}{path}", params=params,
                       headers={"Authorization": f"Bearer {token}"})
    if r.status_code == 410:
        raise Resync
    if r.status_code in (401, 403):
        raise LivespaceError("unauthorized" if r.status_code == 401 else "forbidden",
                             r.text[:200])
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


async def contacts(http: httpx.AsyncClient, workspace: str, token: str
                   ) -> tuple[list[dict[str, Any]], int, str]:
    """Every live contact, page by page, with the position to resume from: the lowest
    seq of the pages (each page is one consistent read) and the epoch."""
    out: list[dict[str, Any]] = []
    after, seq, epoch = "", None, None
    while True:
        page = await get(http, workspace, token, "/contacts", limit=1000, after=after)
        if epoch is not None and page["epoch"] != epoch:
            raise Resync  # the log changed incarnation between pages
        epoch = page["epoch"]
        seq = page["seq"] if seq is None else min(seq, page["seq"])
        out += page["contacts"]
        if page["next"] is None:
            return out, int(seq), str(epoch)
        after = page["next"]


async def head(http: httpx.AsyncClient, workspace: str, token: str, since: int,
               epoch: str | None) -> int:
    """The log's head (Resync when ``since``/``epoch`` cannot be resumed)."""
    params: dict[str, Any] = {"since": since, "limit": 1}
    if epoch:
        params["epoch"] = epoch
    page = await get(http, workspace, token, "/events", **params)
    return int(page["head_seq"])
