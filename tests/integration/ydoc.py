"""A y-websocket client on pycrdt, for tests: a Doc kept in sync with a note's document.

It speaks the protocol with pycrdt's own helpers (``create_sync_message``,
``handle_sync_message``, ``create_update_message``), not livespace's encoder, so the
server is checked against an independent implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import websockets
from pycrdt import (
    Doc,
    Text,
    TransactionEvent,
    YMessageType,
    create_awareness_message,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)


def doc_url(server_ws: str, workspace_id: str, note_id: str, token: str) -> str:
    return f"{server_ws}/ws/workspace/{workspace_id}/notes/{note_id}/doc?token={token}"


class YClient:
    def __init__(self, url: str) -> None:
        self.url = url
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("body", type=Text)
        self.ws: Any = None
        self.received: list[bytes] = []
        self.synced = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._remote = False
        self._sub = self.doc.observe(self._on_change)
        self.close_code: int | None = None

    def _on_change(self, event: TransactionEvent) -> None:
        if self._remote or self.ws is None:
            return
        update = event.update
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().create_task(self.ws.send(create_update_message(update)))

    async def connect(self, **kw: Any) -> YClient:
        self.synced.clear()
        self.ws = await websockets.connect(self.url, max_size=None, **kw)
        await self.ws.send(create_sync_message(self.doc))
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                self.received.append(message)
                if message[0] == YMessageType.SYNC:
                    self._remote = True
                    try:
                        reply = handle_sync_message(message[1:], self.doc)
                    finally:
                        self._remote = False
                    if reply is not None:
                        await self.ws.send(reply)
                    if message[1] == 1:  # step 2: we have the server's document
                        self.synced.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code

    async def send_awareness(self, payload: bytes) -> None:
        await self.ws.send(create_awareness_message(payload))

    async def disconnect(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            if self._reader is not None:
                await self._reader
            self.ws = None

    async def wait_text(self, expected: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while str(self.text) != expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"text is {str(self.text)!r}, expected {expected!r}")
            await asyncio.sleep(0.05)
