"""Scenarios over many workspaces: handshakes spread and as a join storm, quiet rooms,
durable writes spread.

- ``connect --spread N``: connect+welcome+close loops, each client the one member of its
  own workspace (N workspaces). The ``websockets`` baseline does the same JWT check and
  looks the membership up in a SQLite file (``BENCH_MEMBERS_DB``, one indexed read).
- ``storm``: ``--storm-members`` members of ONE workspace connect once each (50 in
  flight) and stay: every join lands in an ever bigger room.
- ``rooms``: ``--rooms`` workspaces with one idle connection each, livespace on
  PostgreSQL + a private ``redis-server``; over ``--rooms-seconds`` it reports the
  server's CPU, PostgreSQL transactions/s of its database and Redis commands/s.
- ``durable --spread N``: 2 writers in each of N workspaces (see scenarios.durable).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench.generator import GeneratorRun
from bench.procs import CpuMark, postgres_pids
from bench.scenarios import Bench, Record, _merge_usage, _quiet
from bench.servers import Server, free_port
from bench.workspaces import SETUP_CONCURRENCY, Workspace, mint

STORM_CONCURRENCY = 50


def members_db(path: Path, pairs: list[tuple[str, str]]) -> None:
    """The baseline's membership table."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE members (workspace_id TEXT, user_id TEXT, role TEXT,"
               " PRIMARY KEY (workspace_id, user_id))")
    db.executemany("INSERT INTO members VALUES (?, ?, 'member')", pairs)
    db.commit()
    db.close()


async def many_workspaces(bench: Bench, server: Server, count: int, members: int = 0,
                          prefix: str = "s") -> list[Workspace]:
    """``count`` workspaces, each owned by its own user, with ``members`` more each."""
    limits = httpx.Limits(max_connections=SETUP_CONCURRENCY, max_keepalive_connections=64)
    made: list[Workspace] = []
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    started = last = time.monotonic()
    async with httpx.AsyncClient(base_url=server.http_url, timeout=60.0, limits=limits) as http:

        async def one(i: int) -> None:
            nonlocal last
            owner = f"{prefix}{i:05d}-owner"
            users = [f"{prefix}{i:05d}-{m}" for m in range(members)]
            tokens = {u: mint(server.secret, u) for u in [owner, *users]}
            async with gate:
                auth = {"Authorization": f"Bearer {tokens[owner]}"}
                r = await http.post("/api/workspaces", json={"name": f"w{i}"}, headers=auth)
                r.raise_for_status()
                ws = str(r.json()["id"])
                for user in users:
                    r = await http.put(f"/api/workspaces/{ws}/members/{user}",
                                       json={"role": "member"}, headers=auth)
                    r.raise_for_status()
            made.append(Workspace(server, ws, owner, users, tokens))
            now = time.monotonic()
            if now - last > 3:
                last = now
                bench.say(f"setup: {len(made):,}/{count:,} workspaces "
                          f"({len(made) / (now - started):,.0f}/s)")

        await asyncio.gather(*(one(i) for i in range(count)))
    return made


def baseline_workspaces(server: Server, count: int, members: int,
                        prefix: str = "s") -> list[Workspace]:
    out = []
    for i in range(count):
        owner = f"{prefix}{i:05d}-owner"
        users = [f"{prefix}{i:05d}-{m}" for m in range(members)]
        tokens = {u: mint(server.secret, u) for u in [owner, *users]}
        out.append(Workspace(server, f"ws-{prefix}{i:05d}", owner, users, tokens))
    return out


@contextlib.asynccontextmanager
async def server_with_members(bench: Bench, kind: str, database: str, count: int,
                              members: int) -> AsyncIterator[tuple[Server, list[Workspace]]]:
    """livespace with the workspaces made over REST, or the baseline with the same
    memberships in its SQLite file (made before it starts)."""
    if kind == "livespace":
        async with bench.server(kind, database) as server:
            yield server, await many_workspaces(bench, server, count, members)
        return
    with tempfile.TemporaryDirectory(prefix="lsbench-members-") as tmp:
        path = Path(tmp) / "members.db"
        members_db(path, [(f"ws-s{i:05d}", u) for i in range(count)
                          for u in [f"s{i:05d}-owner", *(f"s{i:05d}-{m}" for m in range(members))]])
        async with bench.server(kind, database, env={"BENCH_MEMBERS_DB": str(path)}) as server:
            yield server, baseline_workspaces(server, count, members)


async def connect_spread(bench: Bench, kind: str, *, database: str = "sqlite") -> Record:
    o = bench.options
    async with server_with_members(bench, kind, database, o.spread, 0) as (server, spaces):
        label = f"connect-spread/{server.label}"
        await _quiet(server)
        # a warm-up pass first: the steady state is reconnects (tokens verified before,
        # rooms open); the first pass over N new users is measured by the storm
        config = {"mode": "connect", "targets": [w.socket_url(w.owner) for w in spaces],
                  "concurrency": o.connect_concurrency, "duration_s": o.connect_seconds,
                  "warmup_s": max(2.0, o.spread / 1000)}
        bench.say(f"{label}: {o.connect_concurrency} connect+welcome+close loops over "
                  f"{len(spaces):,} workspaces for {o.connect_seconds:.0f} s")
        result, run = await bench.generate(server, label, config)
        _merge_usage(result, run, "connect")
        _say_handshakes(bench, label, result)
        return bench.record("connect_spread", server, params={
            "workspaces": o.spread, "concurrency": o.connect_concurrency,
            "seconds": o.connect_seconds}, result=result)


async def storm(bench: Bench, kind: str, *, database: str = "sqlite") -> Record:
    o = bench.options
    async with server_with_members(bench, kind, database, 1, o.storm_members) as (
            server, spaces):
        label = f"storm/{server.label}"
        workspace = spaces[0]
        await _quiet(server)
        config = {"mode": "storm", "targets": [workspace.socket_url(m)
                                               for m in workspace.members],
                  "concurrency": STORM_CONCURRENCY}
        bench.say(f"{label}: {len(workspace.members):,} members join one workspace, "
                  f"{STORM_CONCURRENCY} at a time, and stay")
        result, run = await bench.generate(server, label, config)
        _merge_usage(result, run, "storm")
        _say_handshakes(bench, label, result)
        return bench.record("storm", server, params={"members": o.storm_members},
                            result=result)


def _say_handshakes(bench: Bench, label: str, result: dict[str, Any]) -> None:
    lat = result.get("latency") or {}
    bench.say(f"{label}: {result.get('handshakes_per_s') or 0:,.0f} handshakes/s, "
              f"p99 {lat.get('p99_ms') or 0:.1f} ms, server CPU "
              f"{result.get('server_cpu_pct') or 0:.0f}%; failures "
              f"{result.get('failures') or 'none'}")


# ---- quiet rooms ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[str]:
    """A redis-server of the benchmark's own (its command count is the server's alone)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("the rooms scenario needs redis-server on PATH")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        binary, "--port", str(port), "--save", "", "--appendonly", "no",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis.asyncio as aioredis

        client = aioredis.from_url(url)
        for _ in range(100):
            with contextlib.suppress(Exception):
                await client.ping()
                break
            await asyncio.sleep(0.05)
        await client.aclose()
        yield url
    finally:
        proc.terminate()
        await proc.wait()


async def _redis_commands(url: str) -> int:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        stats = await client.info("stats")
        return int(stats["total_commands_processed"])
    finally:
        await client.aclose()


async def _pg_transactions(admin_url: str, database: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        value = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
            database)
        return int(value or 0)
    finally:
        await conn.close()


async def rooms(bench: Bench, count: int) -> Record:
    o = bench.options
    async with private_redis() as redis_url, bench.server(
            "livespace", "postgres", env={"REDIS_URL": redis_url}) as server:
        label = f"rooms-{count}/{server.label}+redis"
        spaces = await many_workspaces(bench, server, count, 0, prefix="r")
        measured: dict[str, Any] = {}

        async def on_ready(event: dict[str, Any], run: GeneratorRun) -> None:
            bench.say(f"{label}: {event['connected']:,} connected in "
                      f"{event['connect_s']:.1f} s; settling, then {o.rooms_seconds:.0f} s "
                      "of nothing happening")
            # PostgreSQL backends report their transaction counts up to 10 s late
            # (pgstat's idle flush): let what the setup and handshakes did arrive first
            await asyncio.sleep(15)
            await _quiet(server)
            assert server.pg_database is not None
            pg_pids = postgres_pids(server.pg_database)
            cpu0, pg0 = CpuMark.take(server.pid), CpuMark.take_all(pg_pids)
            tx0 = await _pg_transactions(o.pg_admin_url, server.pg_database)
            cmd0 = await _redis_commands(redis_url)
            await asyncio.sleep(o.rooms_seconds)
            tx1 = await _pg_transactions(o.pg_admin_url, server.pg_database)
            cmd1 = await _redis_commands(redis_url)
            cpu1, pg1 = CpuMark.take(server.pid), CpuMark.take_all(pg_pids)
            seconds = cpu1.wall - cpu0.wall
            measured.update(
                connected=int(event["connected"]), seconds=seconds,
                server_cpu_pct=cpu0.percent_until(cpu1),
                postgres_cpu_pct=pg0.percent_until(pg1),
                pg_transactions_per_s=max(0, tx1 - tx0 - 1) / seconds,  # less our own read
                redis_commands_per_s=max(0, cmd1 - cmd0 - 1) / seconds,
            )
            await run.stop()

        config = {"mode": "idle", "targets": [w.socket_url(w.owner) for w in spaces],
                  "concurrency": 100, "hold_s": 900}
        result, _ = await bench.generate(server, label, config, on_ready=on_ready)
        bench.say(f"{label}: {measured.get('connected', 0):,} idle: server CPU "
                  f"{measured.get('server_cpu_pct', 0):.1f}%, PostgreSQL "
                  f"{measured.get('pg_transactions_per_s', 0):.1f} transactions/s "
                  f"(CPU {measured.get('postgres_cpu_pct', 0):.1f}%), Redis "
                  f"{measured.get('redis_commands_per_s', 0):.0f} commands/s")
        record = bench.record("rooms", server, params={"rooms": count,
                                                       "seconds": o.rooms_seconds},
                              result={**result, **measured})
        record["label"] = f"{count:,} rooms"
        return record


async def durable_spread(bench: Bench, database: str) -> Record:
    o = bench.options
    async with bench.server("livespace", database) as server:
        label = f"durable-spread/{server.label}"
        spaces = await many_workspaces(bench, server, o.spread, 1, prefix="d")
        config = {
            "mode": "durable",
            "targets": [w.socket_url(u) for w in spaces for u in (w.owner, *w.members)],
            "pipeline": max(1, o.pipeline // 8), "update_ratio": o.update_ratio,
            "duration_s": o.durable_seconds, "warmup_s": 1, "rate": o.durable_rate,
            "open_s": o.durable_open_seconds,
        }
        bench.say(f"{label}: 2 writers in each of {len(spaces):,} workspaces, "
                  f"{config['pipeline']} frames in flight each; then {o.durable_rate:,} "
                  "writes/s")
        result, run = await bench.generate(server, label, config)
        _merge_usage(result, run, "durable")
        _merge_usage(result.get("open"), run, "durable_open")
        opened = result.get("open") or {}
        bench.say(f"{label}: closed loop {result.get('events_per_s', 0):,.0f} events/s; "
                  f"open loop ack p99 {(opened.get('latency') or {}).get('p99_ms') or 0:.1f} "
                  f"ms ({opened.get('acked_pct', 0):.1f}% acked)")
        return bench.record("durable_spread", server, params={
            "workspaces": o.spread, "writers": 2 * o.spread,
            "pipeline": config["pipeline"], "rate": o.durable_rate}, result=result)
