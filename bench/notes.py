"""``livespace bench notes``: collaborative notes (docs/collaboration.md, "Measured").

- ``relay``: ``--editors`` clients of one note, each typing ``--rate`` keystrokes a
  second (one Yjs update each, made with pycrdt) for ``--seconds``; the latency from a
  keystroke's send to its arrival at every other editor (p50/p99/max), the server's
  CPU. On one node (SQLite, in-process broker) and across two nodes (PostgreSQL +
  Redis, half the editors on each; the cross-node pairs reported on their own); and,
  in the same invocation, against a bare relay (bench/baselines/websockets_broadcast.py:
  the same frames forwarded as they come, nothing stored or checked) for the ratio.
- ``idle``: ``--documents`` notes with one idle client each: server RSS per document
  (against as many idle workspace sockets, the connection's own cost) and the server's
  CPU while they stay idle (nothing runs on a timer for a note).

Servers on core 0, this generator on core 1 (``--no-pin`` to disable). Receivers do not
decode updates: each keystroke carries a marker (editor, number) found in its bytes.
Run inside ``flock /tmp/livespace-bench.lock``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import websockets
from pycrdt import Doc, Text

from bench.procs import CpuMark, pin_self, raise_fd_limit, rss_kb
from bench.servers import (
    GENERATOR_CORE,
    Server,
    postgres_database,
    repo_root,
    run_server,
    set_group_nice,
)
from bench.workspaces import create_workspace
from livespace.notes import ywire

REDIS_URL = os.environ.get("LIVESPACE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("LIVESPACE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MARK = re.compile(rb"~(\d{3})(\d{6})~")


def doc_url(server: Server, workspace_id: str, note_id: str, token: str) -> str:
    if server.kind != "livespace":  # the relay baseline: one room per path, no storage
        return f"{server.ws_url}/ws/workspace/{note_id}?token={token}"
    return f"{server.ws_url}/ws/workspace/{workspace_id}/notes/{note_id}/doc?token={token}"


async def make_notes(server: Server, workspace_id: str, owner_token: str, count: int) -> list[str]:
    auth = {"Authorization": f"Bearer {owner_token}"}
    async with httpx.AsyncClient(base_url=server.http_url, timeout=60, headers=auth) as http:
        r = await http.post(f"/api/workspaces/{workspace_id}/contacts", json={"name": "Ada"})
        contact = r.json()["id"]
        gate = asyncio.Semaphore(32)

        async def one(n: int) -> str:
            async with gate:
                r = await http.post(f"/api/workspaces/{workspace_id}/contacts/{contact}/notes",
                                    json={"body": f"note {n}"})
            return str(r.json()["id"])

        return list(await asyncio.gather(*(one(n) for n in range(count))))


class Editor:
    """One client of the note: sends its keystrokes, timestamps the others' arrivals."""

    def __init__(self, number: int, url: str, node: int, sent: dict[tuple[int, int], float],
                 samples: list[tuple[float, bool]], nodes: dict[int, int]) -> None:
        self.number = number
        self.url = url
        self.node = node
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("body", type=Text)
        self.sent, self.samples, self.nodes = sent, samples, nodes
        self.ws: Any = None
        self.recording = False

    async def connect(self) -> None:
        self.ws = await websockets.connect(self.url, max_size=None, compression=None)
        await self.ws.send(ywire.sync_step1(b"\x00"))
        asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                now = time.perf_counter()
                if not self.recording or message[:2] != b"\x00\x02":
                    continue
                for match in MARK.finditer(message):
                    key = (int(match.group(1)), int(match.group(2)))
                    at = self.sent.get(key)
                    if at is not None:
                        self.samples.append((now - at, self.nodes[key[0]] != self.node))

    async def type(self, rate: float, seconds: float) -> int:
        """Keystrokes at ``rate`` a second (open loop, a fixed schedule)."""
        count = int(rate * seconds)
        start = time.perf_counter() + (self.number % 10) / (10 * rate)
        for n in range(count):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            before = self.doc.get_state()
            self.text.insert(len(self.text), f"~{self.number:03d}{n:06d}~")
            update = self.doc.get_update(before)
            self.sent[(self.number, n)] = time.perf_counter()
            await self.ws.send(ywire.sync_update(update))
        return count


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def relay(servers: list[Server], args: argparse.Namespace) -> dict[str, Any]:
    first = servers[0]
    ws = await create_workspace(first, args.editors, prefix="ed")
    if first.kind == "livespace":
        (note_id,) = await make_notes(first, ws.id, ws.tokens[ws.owner], 1)
    else:
        note_id = "bench-note"
    sent: dict[tuple[int, int], float] = {}
    samples: list[tuple[float, bool]] = []
    nodes = {n: n % len(servers) for n in range(args.editors)}
    editors = [Editor(n, doc_url(servers[nodes[n]], ws.id, note_id, ws.tokens[user]), nodes[n],
                      sent, samples, nodes)
               for n, user in enumerate(ws.members)]
    for editor in editors:
        await editor.connect()
    await asyncio.sleep(1.0)
    for editor in editors:
        editor.recording = True
    cpu = [CpuMark.take(s.pid) for s in servers]
    me = CpuMark.take(os.getpid())
    typed = sum(await asyncio.gather(*(e.type(args.rate, args.seconds) for e in editors)))
    await asyncio.sleep(1.0)  # the last keystrokes arrive
    server_cpu = [m.percent_until(CpuMark.take(s.pid)) for m, s in zip(cpu, servers, strict=True)]
    generator_cpu = me.percent_until(CpuMark.take(os.getpid()))
    for editor in editors:
        await editor.ws.close()
    expected = typed * (args.editors - 1)
    ms = [lat * 1000 for lat, _ in samples]
    cross = [lat * 1000 for lat, far in samples if far]
    return {
        "nodes": len(servers), "editors": args.editors, "keystrokes_per_s": args.rate,
        "keystrokes": typed, "deliveries": len(samples), "expected": expected,
        "delivered_pct": round(100 * len(samples) / expected, 2) if expected else None,
        "p50_ms": _r(percentile(ms, 0.5)), "p99_ms": _r(percentile(ms, 0.99)),
        "max_ms": _r(max(ms) if ms else None),
        "cross_node_p99_ms": _r(percentile(cross, 0.99)) if len(servers) > 1 else None,
        "server_cpu_pct": [round(c, 1) for c in server_cpu],
        "generator_cpu_pct": round(generator_cpu, 1),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def idle(server: Server, args: argparse.Namespace, *, documents: bool) -> dict[str, Any]:
    """RSS per open document with one idle client (``documents``), or per idle workspace
    socket (the connection's own cost, on a server of its own: freed memory is not
    returned to the system, so the two must not share one)."""
    count = args.documents
    ws = await create_workspace(server, 1, prefix="id")
    notes = await make_notes(server, ws.id, ws.tokens[ws.owner], count)
    token = ws.tokens[ws.owner]
    urls = ([doc_url(server, ws.id, n, token) for n in notes] if documents
            else [ws.socket_url(ws.owner)] * count)
    await asyncio.sleep(1.0)
    before = rss_kb(server.pid)
    sockets = [await websockets.connect(url, compression=None) for url in urls]
    await asyncio.sleep(2.0)
    kib = (rss_kb(server.pid) - before) / count
    cpu = CpuMark.take(server.pid)
    await asyncio.sleep(args.idle_seconds)
    idle_cpu = cpu.percent_until(CpuMark.take(server.pid))
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{server.http_url}/ws/health")).json()
    for sock in sockets:
        await sock.close()
    return {"sockets": count, "kib_each": round(kib, 2), "idle_server_cpu_pct": round(idle_cpu, 2),
            "idle_seconds": args.idle_seconds, "note_documents": health.get("note_documents")}


@contextlib.asynccontextmanager
async def cluster(args: argparse.Namespace, count: int) -> AsyncIterator[list[Server]]:
    """``count`` livespace nodes on one fresh PostgreSQL database and one Redis prefix."""
    env = {"REDIS_URL": REDIS_URL, "LIVESPACE_REDIS_PREFIX": f"lsbench-{uuid.uuid4().hex[:8]}",
           "JWT_SECRET": uuid.uuid4().hex * 2}
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(postgres_database(args.pg_admin_url))
        servers = [await stack.enter_async_context(run_server(
            "livespace", database="postgres", pg_admin_url=args.pg_admin_url, pin=args.pin,
            nice=args.nice, database_url=url, extra_env=env)) for _ in range(count)]
        yield servers


def one_node(args: argparse.Namespace) -> contextlib.AbstractAsyncContextManager[Server]:
    return run_server("livespace", database=args.database, pg_admin_url=args.pg_admin_url,
                      pin=args.pin, nice=args.nice)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "relay" in args.parts:
        runs = []
        for _ in range(args.repeat):
            async with run_server("websockets", pg_admin_url=args.pg_admin_url,
                                  pin=args.pin, nice=args.nice) as server:
                base = await relay([server], args)
            async with one_node(args) as server:
                one = await relay([server], args)
            async with cluster(args, 2) as servers:
                two = await relay(servers, args)
            runs.append({"baseline": base, "one_node": one, "two_nodes": two})
        out["relay"] = runs
    if "idle" in args.parts:
        out["idle"] = {}
        for kind, documents in (("documents", True), ("workspace_sockets", False)):
            async with one_node(args) as server:
                out["idle"][kind] = await idle(server, args, documents=documents)
    return out


def summary(result: dict[str, Any]) -> list[str]:
    lines = []
    for n, r in enumerate(result.get("relay", [])):
        for label, key in (("baseline", "baseline"), ("one node", "one_node"),
                           ("two nodes", "two_nodes")):
            x = r[key]
            lines.append(
                f"run {n + 1} {label:9}: p50 {x['p50_ms']} ms  p99 {x['p99_ms']} ms  "
                f"max {x['max_ms']} ms  cross-node p99 {x['cross_node_p99_ms']}  delivered "
                f"{x['delivered_pct']}%  server CPU {x['server_cpu_pct']}%  generator "
                f"{x['generator_cpu_pct']}%")
    if result.get("relay"):
        for key, target in (("one_node", 30.0), ("two_nodes", 60.0)):
            p99s = [r[key]["p99_ms"] for r in result["relay"] if r[key]["p99_ms"] is not None]
            if p99s:
                median = statistics.median(p99s)
                base = statistics.median(r["baseline"]["p99_ms"] or 0 for r in result["relay"])
                ratio = f", {median / base:.1f}x the relay baseline's" if base else ""
                lines.append(f"{key}: median p99 {median:.1f} ms (target <= {target:.0f}"
                             f"{ratio}): " + ("met" if median <= target else "MISSED"))
    if "idle" in result:
        d, w = result["idle"]["documents"], result["idle"]["workspace_sockets"]
        lines.append(
            f"idle: {d['sockets']} documents with one idle client each: {d['kib_each']} KiB "
            f"each (target <= 15: {'met' if d['kib_each'] <= 15 else 'MISSED'}); "
            f"{w['kib_each']} KiB per idle workspace socket; open on the server: "
            f"{d['note_documents']}; server CPU while idle {d['idle_server_cpu_pct']}% "
            f"over {d['idle_seconds']} s (workspace sockets: {w['idle_server_cpu_pct']}%)")
    return lines


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="livespace bench notes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", nargs="*", help="relay and/or idle (default: both)")
    p.add_argument("--editors", type=int, default=50)
    p.add_argument("--rate", type=float, default=5.0, help="keystrokes/s per editor")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--documents", type=int, default=1000)
    p.add_argument("--idle-seconds", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=2, help="relay runs (medians reported)")
    p.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                   help="the one-node runs' store (two nodes: always PostgreSQL + Redis)")
    p.add_argument("--pg-admin-url", default=PG_ADMIN)
    p.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument("--nice", type=int, default=0, metavar="N",
                   help="servers and generator at `nice -n N` (a shared machine: -20, as root)")
    p.add_argument("--output-dir", type=Path, default=repo_root() / "bench" / "results")
    args = p.parse_args(argv)
    args.parts = args.parts or ["relay", "idle"]
    if set(args.parts) - {"relay", "idle"}:
        p.error("parts: choose from relay, idle")
    raise_fd_limit(4 * args.documents + 1000)
    if args.pin:
        pin_self(GENERATOR_CORE)
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        set_group_nice(os.getpid(), args.nice)
    started = dt.datetime.now(dt.UTC)
    result = asyncio.run(run(args))
    for line in summary(result):
        print(line)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / f"notes-{started:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps({"scenario": "notes", "started_at": started.isoformat(),
                                "options": {k: str(v) for k, v in vars(args).items()},
                                "result": result}, indent=2))
    print(f"results: {path}")
    return 0
