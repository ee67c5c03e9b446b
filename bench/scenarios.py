"""The scenarios: each starts its server(s), sets up through the contract, drives the load
generator, and returns run records (plain dicts that go into the JSON result file)."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.generator import SATURATED_PCT, GeneratorRun, run_generator
from bench.procs import CpuMark, rss_kb
from bench.servers import Server, run_server
from bench.workspaces import Workspace, create_contacts, create_workspace

Record = dict[str, Any]
MIN_PHASE_S = 0.5
BUSY_PCT = 15.0  # CPU% of other processes during a measured window that makes it suspect


@dataclass
class Options:
    """Everything ``livespace bench`` was asked; defaults fit ``all`` in 10 minutes on 2 cores."""

    servers: tuple[str, ...] = ("livespace",)
    databases: tuple[str, ...] | None = None  # None: the scenario's default
    generator: str = "node"
    pin: bool = True
    nice: int = 0
    pg_admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    subscribers: int = 1000
    payload_bytes: int = 200
    closed_seconds: float = 5.0
    open_seconds: float = 5.0
    rate: int = 50_000
    window: int = 16
    batch: bool = False
    ws_subscribers: bool = False
    writers: int = 8
    pipeline: int = 32
    durable_seconds: float = 5.0
    durable_rate: int = 5000
    durable_open_seconds: float = 5.0
    update_ratio: float = 0.25
    idle_connections: int = 10_000
    idle_per_workspace: int = 1000
    idle_settle: float = 3.0
    connect_seconds: float = 5.0
    connect_concurrency: int = 50
    connect_users: int = 200
    spread: int = 0  # connect, durable: over this many workspaces (0: one workspace)
    storm_members: int = 5000
    rooms: tuple[int, ...] = (2000, 10_000)
    rooms_seconds: float = 20.0
    replay_sizes: tuple[int, ...] = (10_000, 100_000)
    replay_fill: str = "socket"
    catchup_events: int = 100_000
    catchup_runs: int = 2
    log_dir: Path | None = None


@dataclass
class Bench:
    """One ``livespace bench`` invocation: its options, progress output and run records."""

    options: Options
    records: list[Record] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def say(self, message: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.say(f"WARNING: {message}")

    def server(self, kind: str, database: str = "sqlite",
               env: dict[str, str] | None = None) -> Any:
        return run_server(
            kind,
            database=database,
            pg_admin_url=self.options.pg_admin_url,
            pin=self.options.pin,
            nice=self.options.nice,
            keep_logs=self.options.log_dir,
            extra_env=env,
        )

    async def generate(
        self, server: Server, label: str, config: dict[str, Any], on_ready: Any = None
    ) -> tuple[dict[str, Any], GeneratorRun]:
        """Run the generator with progress lines; warn when it saturated its core."""

        async def on_event(event: dict[str, Any], run: GeneratorRun) -> None:
            kind = event.get("kind")
            if kind == "progress":
                server_pct, gen_pct = run.interval_usage()
                self.say(f"{label}: {_progress_text(event)}  "
                         f"[server CPU {server_pct:.0f}%, generator CPU {gen_pct:.0f}%]")
            elif kind == "ready" and on_ready is not None:
                await on_ready(event, run)

        result, run = await run_generator(
            self.options.generator, server, config, pin=self.options.pin,
            nice=self.options.nice, on_event=on_event,
        )
        for name, usage in run.phases.items():
            if usage.seconds < MIN_PHASE_S:
                continue  # too short for CPU figures to mean anything (10 ms ticks)
            if usage.other_cpu_pct > BUSY_PCT:
                self.warn(
                    f"{label}: other processes used {usage.other_cpu_pct:.0f}% of a core "
                    f"during '{name}': the machine was not quiet, figures are pessimistic"
                )
            if usage.generator_cpu_pct > SATURATED_PCT:
                if usage.server_cpu_pct >= SATURATED_PCT:
                    verdict = (f"the server was at {usage.server_cpu_pct:.0f}% too, so the "
                               "figure is close to the server's limit, with no headroom left "
                               "on the generator side")
                else:
                    verdict = (f"the server was only at {usage.server_cpu_pct:.0f}%: this "
                               "figure is the generator's limit, not the server's")
                self.warn(
                    f"{label}: the {self.options.generator} generator used "
                    f"{usage.generator_cpu_pct:.0f}% of its core during '{name}'; {verdict}"
                )
        if not server.alive():
            self.warn(f"{label}: the server died; its log:\n{server.log_tail()}")
        return result, run

    def record(self, scenario: str, server: Server, **fields: Any) -> Record:
        record: Record = {
            "scenario": scenario,
            "server": server.kind,
            "label": server.label,
            "database": server.database,
            "generator": self.options.generator,
            **fields,
        }
        self.records.append(record)
        return record


def _progress_text(event: dict[str, Any]) -> str:
    phase = event.get("phase")
    elapsed = float(event.get("elapsed_s") or 0)
    if phase == "connect" and "total" in event:
        return f"connected {event['connected']:,}/{event['total']:,} ({elapsed:.0f} s)"
    if phase in ("closed", "open"):
        name = "closed loop" if phase == "closed" else "open loop"
        return (f"{name} {elapsed:4.1f} s: {event['delivered']:,} delivered, "
                f"{event['rate']:,.0f}/s, {event.get('alive', '?')} subscribers")
    if phase == "durable":
        return f"{elapsed:4.1f} s: {event['acks']:,} acks, head seq {event.get('max_seq', 0):,}"
    if phase == "connect":
        return f"{elapsed:4.1f} s: {event['handshakes']:,} handshakes"
    if phase == "replay":
        return f"{elapsed:4.1f} s: received {event['received']:,}/{event['expected']:,}"
    return str(event)


def _prefixed(bench: Bench, prefix: str) -> Callable[[str], None]:
    def say(message: str) -> None:
        bench.say(f"{prefix} {message}")

    return say


def _merge_usage(section: Any, run: GeneratorRun, phase: str) -> None:
    usage = run.phases.get(phase)
    if isinstance(section, dict) and usage is not None:
        section.update(usage.as_dict())


async def fanout(bench: Bench, kind: str, *, batch: bool, database: str = "sqlite") -> Record:
    o = bench.options
    async with bench.server(kind, database) as server:
        label = f"fanout/{server.label}{' batch=1' if batch else ''}"
        bench.say(f"{label}: setting up {o.subscribers:,} members (port {server.port})")
        workspace = await create_workspace(
            server, o.subscribers, progress=lambda m: bench.say(f"{label}: {m}")
        )
        rss_before = rss_kb(server.pid)
        config = {
            "mode": "fanout",
            "targets": [workspace.socket_url(m, batch=batch) for m in workspace.members],
            "publisher": workspace.socket_url(workspace.owner, batch=batch),
            "payload_bytes": o.payload_bytes,
            "closed_s": o.closed_seconds,
            "open_s": o.open_seconds,
            "rate": o.rate,
            "window": o.window,
            "concurrency": 100,
            "raw": not o.ws_subscribers,
        }
        bench.say(f"{label}: connecting {o.subscribers:,} subscribers + 1 publisher")
        result, run = await bench.generate(server, label, config)
        for phase in ("closed", "open"):
            section = result.get(phase)
            _merge_usage(section, run, phase)
            if section and section.get("generator_cpu_pct"):
                # What the generator could receive with a whole core at this cost per delivery.
                section["generator_capacity_per_s"] = round(
                    section["deliveries_per_s"] * 100 / section["generator_cpu_pct"])
        _summarise_fanout(bench, label, result)
        return bench.record(
            "fanout",
            server,
            batch=batch,
            params={k: config[k] for k in ("payload_bytes", "closed_s", "open_s", "rate", "window")}
            | {"subscribers": o.subscribers},
            rss_kb={"before": rss_before, "after": rss_kb(server.pid)},
            result=result,
        )


def _summarise_fanout(bench: Bench, label: str, result: dict[str, Any]) -> None:
    closed, opened = result.get("closed") or {}, result.get("open") or {}
    if closed:
        bench.say(f"{label}: closed loop {closed['deliveries_per_s']:,.0f} deliveries/s "
                  f"(server CPU {closed.get('server_cpu_pct', 0):.0f}%, "
                  f"generator CPU {closed.get('generator_cpu_pct', 0):.0f}%: it could take "
                  f"~{closed.get('generator_capacity_per_s', 0):,}/s)")
    if opened:
        lat = opened.get("latency") or {}
        bench.say(f"{label}: open loop {opened['target_deliveries_per_s']:,}/s: "
                  f"p50 {lat.get('p50_ms') or 0:.1f} ms, p99 {lat.get('p99_ms') or 0:.1f} ms, "
                  f"max {lat.get('max_ms') or 0:.1f} ms, delivered {opened['delivered_pct']:.2f}%, "
                  f"server CPU {opened.get('server_cpu_pct', 0):.0f}%")
    if result.get("closes"):
        bench.warn(f"{label}: connections closed by the server: {result['closes']}")
    if result.get("publisher_errors"):
        bench.warn(f"{label}: the publisher got error frames: {result['publisher_errors']}")


async def _quiet(server: Server, limit: float = 15.0) -> None:
    """Wait until the server's CPU settles (under 5% over half a second) or ``limit`` s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = CpuMark.take(server.pid)
        await asyncio.sleep(0.5)
        if before.percent_until(CpuMark.take(server.pid)) < 5.0:
            return


async def idle(bench: Bench, kind: str, *, database: str = "sqlite") -> Record:
    o = bench.options
    count = o.idle_connections
    async with bench.server(kind, database) as server:
        label = f"idle/{server.label}"
        workspaces: list[Workspace] = []
        groups = max(1, math.ceil(count / max(1, o.idle_per_workspace)))
        bench.say(f"{label}: setting up {groups} workspace(s), {count:,} members in all")
        left = count
        for group in range(groups):
            size = min(left, o.idle_per_workspace)
            left -= size
            workspaces.append(await create_workspace(
                server, size, name=f"idle-{group}", prefix=f"i{group}",
                progress=_prefixed(bench, f"{label}: workspace {group + 1}:"),
            ))
        targets = [w.socket_url(m) for w in workspaces for m in w.members]
        await _quiet(server)
        rss_before = rss_kb(server.pid)
        measured: dict[str, Any] = {}

        async def on_ready(event: dict[str, Any], run: GeneratorRun) -> None:
            bench.say(f"{label}: {event['connected']:,} connected in {event['connect_s']:.1f} s; "
                      f"settling {o.idle_settle:.0f} s")
            await asyncio.sleep(o.idle_settle)
            await _quiet(server)
            measured["rss_after"] = rss_kb(server.pid)
            measured["connected"] = int(event["connected"])
            await run.stop()

        config = {"mode": "idle", "targets": targets, "concurrency": 100, "hold_s": 900}
        bench.say(f"{label}: opening {count:,} connections "
                  f"(server RSS {rss_before / 1024:.0f} MiB)")
        result, _ = await bench.generate(server, label, config, on_ready=on_ready)
        connected = measured.get("connected", 0)
        after = measured.get("rss_after", 0)
        per_conn = (after - rss_before) / connected if connected else None
        if per_conn is not None:
            bench.say(f"{label}: RSS {rss_before / 1024:.1f} -> {after / 1024:.1f} MiB: "
                      f"{per_conn:.1f} KiB per connection")
        if connected < count:
            bench.warn(f"{label}: only {connected:,}/{count:,} connected: "
                       f"{result.get('connect_failures')}")
        return bench.record(
            "idle", server,
            params={"connections": count, "per_workspace": o.idle_per_workspace},
            rss_kb={"before": rss_before, "after": after},
            kb_per_connection=per_conn, result=result,
        )


async def connect(bench: Bench, kind: str, *, database: str = "sqlite") -> Record:
    o = bench.options
    async with bench.server(kind, database) as server:
        label = f"connect/{server.label}"
        workspace = await create_workspace(server, o.connect_users)
        config = {
            "mode": "connect",
            "targets": [workspace.socket_url(m) for m in workspace.members],
            "concurrency": o.connect_concurrency,
            "duration_s": o.connect_seconds,
        }
        bench.say(f"{label}: {o.connect_concurrency} concurrent connect+welcome+close loops "
                  f"for {o.connect_seconds:.0f} s")
        result, run = await bench.generate(server, label, config)
        _merge_usage(result, run, "connect")
        bench.say(f"{label}: {result['handshakes_per_s']:,.0f} handshakes/s, "
                  f"p99 {(result.get('latency') or {}).get('p99_ms') or 0:.1f} ms; "
                  f"failures {result.get('failures') or 'none'}")
        return bench.record("connect", server, params={
            "concurrency": o.connect_concurrency, "seconds": o.connect_seconds,
            "users": o.connect_users}, result=result)


async def durable(bench: Bench, database: str) -> Record:
    o = bench.options
    async with bench.server("livespace", database) as server:
        label = f"durable/{server.label}"
        workspace = await create_workspace(server, o.writers)
        config = {
            "mode": "durable",
            "targets": [workspace.socket_url(m) for m in workspace.members],
            "pipeline": o.pipeline,
            "update_ratio": o.update_ratio,
            "duration_s": o.durable_seconds,
            "warmup_s": 1,
            "rate": o.durable_rate,
            "open_s": o.durable_open_seconds,
        }
        bench.say(f"{label}: {o.writers} writers, {o.pipeline} frames in flight each, "
                  f"{o.durable_seconds:.0f} s; then {o.durable_rate:,} writes/s for "
                  f"{o.durable_open_seconds:.0f} s")
        result, run = await bench.generate(server, label, config)
        _merge_usage(result, run, "durable")
        _merge_usage(result.get("open"), run, "durable_open")
        lat = result.get("latency") or {}
        bench.say(f"{label}: closed loop {result['events_per_s']:,.0f} committed events/s, "
                  f"ack p50 {lat.get('p50_ms') or 0:.1f} ms, p99 {lat.get('p99_ms') or 0:.1f} ms; "
                  f"errors {result.get('errors') or 'none'}")
        if opened := result.get("open"):
            lat = opened.get("latency") or {}
            bench.say(f"{label}: open loop {opened['target_events_per_s']:,}/s: "
                      f"{opened['events_per_s']:,.0f} acked/s ({opened['acked_pct']:.1f}%), "
                      f"ack p50 {lat.get('p50_ms') or 0:.1f} ms, "
                      f"p99 {lat.get('p99_ms') or 0:.1f} ms")
        return bench.record("durable", server, params={
            "writers": o.writers, "pipeline": o.pipeline, "seconds": o.durable_seconds,
            "update_ratio": o.update_ratio, "rate": o.durable_rate,
            "open_seconds": o.durable_open_seconds}, result=result)


async def replay(bench: Bench, database: str) -> Record:
    o = bench.options
    async with bench.server("livespace", database) as server:
        label = f"replay/{server.label}"
        workspace = await create_workspace(server, o.writers + 1)
        reader, writers = workspace.members[0], workspace.members[1:]
        head = 0
        steps: list[dict[str, Any]] = []
        for size in sorted(o.replay_sizes):
            missing = size - head
            if missing > 0:
                bench.say(f"{label}: writing {missing:,} events ({o.replay_fill})")
                started = time.monotonic()
                if o.replay_fill == "rest":
                    head = max(head, await create_contacts(
                        workspace, missing, progress=lambda m: bench.say(f"{label}: {m}")))
                else:
                    fill, _ = await bench.generate(server, f"{label} fill", {
                        "mode": "durable",
                        "targets": [workspace.socket_url(w) for w in writers],
                        "pipeline": 64, "update_ratio": 0, "target_events": missing,
                        "timeout_s": 900,
                    })
                    head = int(fill.get("max_seq") or head + int(fill["acks"]))
                bench.say(f"{label}: head seq {head:,} after "
                          f"{time.monotonic() - started:.1f} s")
            result, run = await bench.generate(server, label, {
                "mode": "replay", "targets": [workspace.socket_url(reader, since=0)],
                "expect": head, "timeout_s": 120,
            })
            _merge_usage(result, run, "replay")
            bench.say(f"{label}: {result['received']:,}/{result['expected']:,} events replayed "
                      f"in {result['total_ms'] / 1000:.2f} s (welcome after "
                      f"{result['welcome_ms']:.0f} ms)")
            if not result.get("complete"):
                bench.warn(f"{label}: replay of {size:,} incomplete: {result}")
            steps.append({"size": size, "head_seq": head, **result})
        return bench.record("replay", server, params={"sizes": list(o.replay_sizes),
                            "fill": o.replay_fill}, steps=steps)
