"""``livespace bench soak --minutes N``: one node under steady churn for N minutes, its
resident memory and open file descriptors sampled every 10 s.

The node runs on a PostgreSQL and a Redis of the run's own (bench/chaos/services.py),
pinned to core 0 (the load on core 1). The load: connections opened and closed in a loop
(welcome, then close), writers adding notes, a replay of the last 500 events every few
seconds, and idle connections that stay. After the warm-up (minute 2) RSS and fds
should stay flat: the report gives their growth from minute 2 to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import websockets

from bench.chaos.services import Node, Postgres, Redis

SAMPLE_S = 10.0


def sample(pid: int) -> tuple[int, int]:
    """(RSS bytes, open fds) of ``pid``."""
    with open(f"/proc/{pid}/statm") as fh:
        rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    def __init__(self, minutes: float, churn: int, writers: int, idle: int) -> None:
        self.seconds = minutes * 60
        self.churn, self.writers, self.idle = churn, writers, idle
        self.secret = secrets.token_urlsafe(48)
        self.root = Path(tempfile.mkdtemp(prefix="livespace-soak-"))
        self.pg, self.redis = Postgres(), Redis(self.root)
        self.node: Node | None = None
        self.stop = False
        self.counts = {"connects": 0, "writes": 0, "replays": 0, "replayed": 0, "errors": 0}

    def token(self, user: str) -> str:
        now = int(time.time())
        return jwt.encode({"sub": user, "iat": now, "exp": now + 86400}, self.secret,
                          algorithm="HS256")

    async def connect(self, ws_id: str, user: str, since: int | None = None) -> Any:
        assert self.node is not None
        url = f"{self.node.ws}/ws/workspace/{ws_id}" + (f"?since={since}" if since else "")
        ws = await websockets.connect(url, additional_headers={
            "Authorization": f"Bearer {self.token(user)}"}, open_timeout=10, max_size=2**24)
        welcome = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        return ws, welcome

    @staticmethod
    async def drain(ws: Any) -> None:
        async for _ in ws:
            pass

    async def churner(self, ws_id: str, i: int) -> None:
        while not self.stop:
            try:
                ws, _ = await self.connect(ws_id, f"churn{i}")
                self.counts["connects"] += 1
                await ws.close()
            except (OSError, TimeoutError, websockets.WebSocketException):
                self.counts["errors"] += 1
            await asyncio.sleep(0.05)

    async def writer(self, ws_id: str, i: int, contact: str) -> None:
        ws, _ = await self.connect(ws_id, f"writer{i}")
        n = 0
        while not self.stop:
            n += 1
            await ws.send(orjson.dumps({"type": "note_added", "ref": f"w{i}-{n}", "data": {
                "contact_id": contact, "body": f"note {n} " + "x" * 200}}).decode())
            while True:  # the ack (events of the others pass by)
                frame = orjson.loads(await ws.recv())
                if frame.get("ref") == f"w{i}-{n}":
                    break
            self.counts["writes"] += 1
            await asyncio.sleep(0.02)
        await ws.close()

    async def replayer(self, ws_id: str) -> None:
        assert self.node is not None
        while not self.stop:
            await asyncio.sleep(3.0)
            head = self.counts["writes"]
            ws, welcome = await self.connect(ws_id, "replayer", since=max(1, head - 500))
            want = int(welcome.get("replay", {}).get("count", 0))
            got = 0
            while got < want:
                frame = orjson.loads(await ws.recv())
                got += frame.get("type") == "note_added"
            await ws.close()
            self.counts["replays"] += 1
            self.counts["replayed"] += got

    async def go(self) -> dict[str, Any]:
        assert self.node is not None and self.node.proc is not None
        users = ["owner", "replayer", *[f"churn{i}" for i in range(self.churn)],
                 *[f"writer{i}" for i in range(self.writers)],
                 ]
        async with httpx.AsyncClient(base_url=self.node.http, timeout=30, headers={
                "Authorization": f"Bearer {self.token('owner')}"}) as api:
            ws_id = (await api.post("/api/workspaces", json={"name": "soak"})).json()["id"]
            for user in users[1:]:
                await api.put(f"/api/workspaces/{ws_id}/members/{user}", json={"role": "member"})
            contact = (await api.post(f"/api/workspaces/{ws_id}/contacts",
                                      json={"name": "Soak"})).json()["id"]
        async with httpx.AsyncClient(base_url=self.node.http, timeout=30, headers={
                "Authorization": f"Bearer {self.token('owner')}"}) as api:
            quiet = (await api.post("/api/workspaces", json={"name": "quiet"})).json()["id"]
            for i in range(self.idle):
                await api.put(f"/api/workspaces/{quiet}/members/idle{i}",
                              json={"role": "member"})
        # idle connections stay in a quiet workspace of their own: nothing to read
        idle = [await self.connect(quiet, f"idle{i}") for i in range(self.idle)]
        # they read what comes (presence of the others) so that pings are answered
        readers = [asyncio.create_task(self.drain(ws)) for ws, _ in idle]
        tasks = [asyncio.create_task(self.churner(ws_id, i)) for i in range(self.churn)]
        tasks += [asyncio.create_task(self.writer(ws_id, i, contact))
                  for i in range(self.writers)]
        tasks.append(asyncio.create_task(self.replayer(ws_id)))
        samples: list[dict[str, float]] = []
        started = time.monotonic()
        while time.monotonic() - started < self.seconds:
            await asyncio.sleep(SAMPLE_S)
            rss, fds = sample(self.node.proc.pid)
            samples.append({"t_s": round(time.monotonic() - started, 1), "rss_mib":
                            round(rss / 2**20, 2), "fds": fds, **self.counts})
            print(f"soak: {samples[-1]}", flush=True)
        self.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for ws, _ in idle:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
        warm = next((s for s in samples if s["t_s"] >= 120), samples[0])
        last = samples[-1]
        return {"minutes": self.seconds / 60, "samples": samples,
                "warm": warm, "last": last,
                "rss_growth_pct": round((last["rss_mib"] / warm["rss_mib"] - 1) * 100, 2),
                "fd_growth": last["fds"] - warm["fds"], **self.counts}

    def run(self) -> dict[str, Any]:
        self.pg.init()
        self.redis.start()
        env = {"JWT_SECRET": self.secret, "DATABASE_URL": self.pg.url,
               "REDIS_URL": self.redis.url, "LIVESPACE_REDIS_PREFIX": "soak",
               "LIVESPACE_HTTP_RATE_LIMIT": "100000", "LIVESPACE_USER_RATE_LIMIT": "100000",
               "LIVESPACE_RATE_LIMIT": "100000"}
        self.node = Node(self.root, env, 0)
        self.node.start()
        assert self.node.proc is not None
        try:
            os.sched_setaffinity(self.node.proc.pid, {0})
            os.sched_setaffinity(0, {1})
        except OSError:
            pass
        try:
            return asyncio.run(self.go())
        finally:
            self.node.kill()
            self.redis.stop()
            self.pg.remove()
            shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="livespace bench soak")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--churn", type=int, default=4, help="connect/close loops")
    p.add_argument("--writers", type=int, default=2)
    p.add_argument("--idle", type=int, default=100, help="connections that stay open")
    p.add_argument("--output-dir", type=Path, default=Path("bench/results"))
    args = p.parse_args(argv)
    result = Soak(args.minutes, args.churn, args.writers, args.idle).run()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"soak: {result['minutes']} min, {result['connects']} connects, {result['writes']} "
          f"writes, {result['replays']} replays; RSS {result['warm']['rss_mib']} MiB at "
          f"{result['warm']['t_s']} s -> {result['last']['rss_mib']} MiB "
          f"({result['rss_growth_pct']:+.2f}%), fds {result['warm']['fds']} -> "
          f"{result['last']['fds']} -> {path}")
    return 0
