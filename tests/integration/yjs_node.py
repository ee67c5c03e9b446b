"""A real Yjs client (``yjs`` + ``y-websocket`` from npm, tests/yjs) in a Node process,
driven line by line from a test."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

CLIENT = Path(__file__).parent.parent / "yjs" / "client.mjs"
INSTALLED = CLIENT.parent / "node_modules" / ".installed"
HOW = ("the Yjs test clients are not installed: run `make yjs-deps` (npm ci in tests/yjs; "
       "needs Node.js >= 20 and npm)")


class NodeYClient:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, server_ws: str, workspace_id: str, note_id: str, token: str,
                    name: str = "anon", color: str = "#3366ff") -> NodeYClient:
        node = shutil.which("node")
        assert node and INSTALLED.exists(), HOW
        proc = await asyncio.create_subprocess_exec(
            node, str(CLIENT), server_ws, workspace_id, note_id, token, name, color,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            obj = json.loads(line)
            if "reply" in obj:
                await self._replies.put(obj)
            else:
                self.events.append(obj)

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(self._replies.get(), 20)

    async def text(self) -> str:
        return str((await self.call("text"))["text"])

    async def wait_synced(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not (await self.call("text"))["synced"]:
            assert time.monotonic() < deadline, f"not synced; events: {self.events[-5:]}"
            await asyncio.sleep(0.05)

    async def wait_text(self, expected: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while (text := await self.text()) != expected:
            assert time.monotonic() < deadline, f"text is {text!r}, expected {expected!r}"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.call("quit")
                await asyncio.wait_for(self.proc.wait(), 5)
            except Exception:
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
