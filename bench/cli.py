"""``livespace bench SCENARIO [options]``: the command line, and running the scenarios."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import functools
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import catchup, report, scenarios, spread
from bench.generator import NODE_HOW, node_available
from bench.procs import busy_seconds, machine, pin_self, raise_fd_limit
from bench.scenarios import Bench, Options
from bench.servers import DATABASES, GENERATOR_CORE, SERVERS, repo_root

SCENARIO_HELP = """\
scenarios (each starts its own server(s) on core 0, the load generator on core 1):
  fanout    N subscribers (--subscribers, distinct members) and one publisher of
            ~200-byte `broadcast` frames in one workspace. Closed loop: the publisher
            keeps --window messages in flight, max deliveries/s. Open loop: a fixed
            --rate of deliveries/s (rate/N messages/s) with latency p50/p99/max and
            delivered %. Server CPU% and RSS per phase. --batch: clients use batch=1.
  durable   --writers members pipelining contact_created/contact_updated frames.
            Closed loop (--pipeline in flight each): committed (acked) events/s.
            Open loop (--durable-rate writes/s): ack latency p50/p99 at that load.
            Runs on SQLite and PostgreSQL unless --database says otherwise.
  idle      --idle-connections authenticated connections (--idle-per-workspace per
            workspace) that stay idle: server RSS per connection = (RSS after - RSS
            before) / connections.
  connect   --connect-concurrency loops of connect, wait for `welcome`, close, for
            --connect-seconds: authenticated handshakes/s.
  catchup   a client 100,000 events behind (--catchup-events) over 1,000 contacts:
            full replay vs compacted (since=0&compact=1), time to live and bytes
            received, medians of --catchup-runs; and a 1,000-contact import, timed.
            Runs on SQLite and PostgreSQL unless --database says otherwise.
  replay    writes --replay-sizes events (in order; default 10,000 then 100,000),
            then times one client connecting with since=0 until it has received all
            of them (welcome.replay.count).
  baseline  fanout, idle and connect against livespace AND the two baselines in
            bench/baselines/ (FastAPI tutorial ConnectionManager on uvicorn;
            websockets 17 broadcast() on uvloop), with livespace/baseline ratios.
  all       baseline + fanout with batch=1 + durable (SQLite, PostgreSQL) + replay:
            about 4-6 minutes on a 2-core machine with the defaults.

Writes bench/results/<timestamp>.json and .png (--output-dir). Policy limits
(LIVESPACE_RATE_LIMIT and friends) are lifted on the server under test so that it
measures capacity. The generator's own CPU is measured: above 90% of a core it is the
bottleneck and the report says so. Node generator: `make bench-deps`.
"""


def _csv(choices: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in raw.split(",") if item.strip())
        bad = [item for item in items if item not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
        return items

    return parse


def _sizes(raw: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(item) for item in raw.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of integers") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be >= 1")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    d = Options()
    p = argparse.ArgumentParser(
        prog="livespace bench",
        description="Benchmark livespace (and baselines) on this machine; see docs/performance.md.",
        epilog=SCENARIO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", choices=("fanout", "durable", "idle", "connect", "replay",
                                        "catchup", "storm", "rooms", "baseline", "all"))
    g = p.add_argument_group("servers and generator")
    g.add_argument("--servers", type=_csv(SERVERS), default=None,
                   help="servers for fanout/idle/connect, comma-separated from "
                        f"{','.join(SERVERS)} (default: livespace; baseline/all: all three)")
    g.add_argument("--database", type=_csv(DATABASES), default=None,
                   help="livespace's store: sqlite, postgres or both (default: sqlite; "
                        "durable: sqlite,postgres)")
    g.add_argument("--pg-admin-url", default=d.pg_admin_url,
                   help="PostgreSQL on which a fresh database is created, then dropped "
                        "(default: %(default)s)")
    g.add_argument("--generator", choices=("auto", "node", "python"), default="auto",
                   help="load generator: node (bench/loadgen, `make bench-deps`), python "
                        "(slow, for smoke tests), auto = node, else say how to install it")
    g.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the server to core 0 and the generator to core 1")
    g.add_argument("--nice", type=int, default=0, metavar="N",
                   help="run the server and the generator with `nice -n N`; on a shared "
                        "machine -20 (root only) keeps other processes from skewing the "
                        "figures (default %(default)s)")
    g.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each run, wait up to SECONDS for the machine to be quiet "
                        "(other processes under 15%% of a core for 2 s); default: don't wait")
    g.add_argument("--quick", action="store_true",
                   help="small numbers everywhere (a ~1-2 minute `all`), for a first look")
    f = p.add_argument_group("fanout")
    f.add_argument("--subscribers", type=int, default=d.subscribers, help="default %(default)s")
    f.add_argument("--payload-bytes", type=int, default=d.payload_bytes,
                   help="broadcast payload size (default %(default)s)")
    f.add_argument("--closed-seconds", type=float, default=d.closed_seconds,
                   help="closed-loop duration (default %(default)s; 0 skips it)")
    f.add_argument("--open-seconds", type=float, default=d.open_seconds,
                   help="open-loop duration (default %(default)s; 0 skips it)")
    f.add_argument("--rate", type=int, default=d.rate,
                   help="open-loop deliveries/s (default %(default)s = 50 msgs/s x 1000)")
    f.add_argument("--window", type=int, default=d.window,
                   help="closed loop: messages in flight (default %(default)s)")
    f.add_argument("--batch", action="store_true", help="livespace clients connect with batch=1")
    f.add_argument("--ws-subscribers", action="store_true",
                   help="Node generator: subscribers use the `ws` client instead of the bare "
                        "socket receive path (to compare the generator's own cost)")
    w = p.add_argument_group("durable")
    w.add_argument("--writers", type=int, default=d.writers, help="default %(default)s")
    w.add_argument("--pipeline", type=int, default=d.pipeline,
                   help="unacked frames per writer (default %(default)s)")
    w.add_argument("--durable-seconds", type=float, default=d.durable_seconds,
                   help="default %(default)s")
    w.add_argument("--durable-rate", type=int, default=d.durable_rate,
                   help="open loop: writes/s over all writers, for ack latency at a fixed "
                        "load (default %(default)s; 0 skips it)")
    w.add_argument("--durable-open-seconds", type=float, default=d.durable_open_seconds,
                   help="default %(default)s")
    w.add_argument("--update-ratio", type=float, default=d.update_ratio,
                   help="share of contact_updated among the writes (default %(default)s)")
    i = p.add_argument_group("idle")
    i.add_argument("--idle-connections", type=int, default=d.idle_connections,
                   help="default %(default)s (open files are limited: over ~15000 the "
                        "server and generator may run out)")
    i.add_argument("--idle-per-workspace", type=int, default=d.idle_per_workspace,
                   help="connections (distinct members) per workspace (default %(default)s)")
    i.add_argument("--idle-settle", type=float, default=d.idle_settle,
                   help="seconds to wait before reading RSS (default %(default)s)")
    s = p.add_argument_group("many workspaces (storm, rooms, --spread)")
    s.add_argument("--spread", type=int, default=d.spread, metavar="N",
                   help="connect: each client the one member of its own workspace, N of "
                   "them; durable: 2 writers in each of N workspaces (default: one workspace)")
    s.add_argument("--storm-members", type=int, default=d.storm_members,
                   help="storm: members joining one workspace (default %(default)s)")
    s.add_argument("--rooms", type=_sizes, default=d.rooms,
                   help="rooms: workspace counts, one idle connection each "
                   "(default 2000,10000)")
    s.add_argument("--rooms-seconds", type=float, default=d.rooms_seconds,
                   help="rooms: measured idle window (default %(default)s)")
    c = p.add_argument_group("connect")
    c.add_argument("--connect-seconds", type=float, default=d.connect_seconds,
                   help="default %(default)s")
    c.add_argument("--connect-concurrency", type=int, default=d.connect_concurrency,
                   help="default %(default)s")
    c.add_argument("--connect-users", type=int, default=d.connect_users,
                   help="distinct members whose tokens are used in turn (default %(default)s)")
    r = p.add_argument_group("replay")
    r.add_argument("--replay-sizes", type=_sizes, default=d.replay_sizes,
                   help="comma-separated event counts (default 10000,100000)")
    r.add_argument("--replay-fill", choices=("socket", "rest"), default=d.replay_fill,
                   help="how the events are written: pipelined socket frames or concurrent "
                        "POST /contacts (default %(default)s)")
    k = p.add_argument_group("catchup")
    k.add_argument("--catchup-events", type=int, default=d.catchup_events,
                   help="events in the log, over 1,000 contacts (default %(default)s)")
    k.add_argument("--catchup-runs", type=int, default=d.catchup_runs,
                   help="catch-ups of each kind, and extra imports (default %(default)s)")
    o = p.add_argument_group("output")
    o.add_argument("--repeat", type=int, default=1,
                   help="run the whole scenario N times; the summary shows medians "
                        "(default %(default)s)")
    o.add_argument("--output-dir", type=Path, default=None,
                   help="where <timestamp>.json/.png go (default: bench/results)")
    o.add_argument("--no-chart", dest="chart", action="store_false", help="skip the PNG")
    o.add_argument("--keep-logs", action="store_true",
                   help="keep the servers' logs next to the results")
    return p


QUICK = {
    "subscribers": 200, "closed_seconds": 2.0, "open_seconds": 2.0, "rate": 10_000,
    "durable_seconds": 2.0, "durable_open_seconds": 2.0, "durable_rate": 1000,
    "idle_connections": 1000, "idle_settle": 1.0,
    "connect_seconds": 2.0, "replay_sizes": (1000, 10_000),
}


def options_from(args: argparse.Namespace, generator: str, out_dir: Path) -> Options:
    values: dict[str, Any] = {}
    for item in dataclasses.fields(Options):
        if hasattr(args, item.name):
            values[item.name] = getattr(args, item.name)
    values["databases"] = args.database
    values["generator"] = generator
    values["servers"] = args.servers or Options.servers
    values["log_dir"] = out_dir / "logs" if args.keep_logs else None
    if args.quick:
        defaults = Options()
        for name, value in QUICK.items():
            if values.get(name) == getattr(defaults, name):
                values[name] = value
    return Options(**values)


Step = tuple[str, Callable[[], Awaitable[Any]]]


def plan(scenario: str, bench: Bench, explicit_servers: bool) -> list[Step]:
    """The runs a scenario stands for, in order."""
    o = bench.options
    default_dbs = ("sqlite",)
    dbs = o.databases or default_dbs
    servers = o.servers
    if scenario in ("baseline", "all") and not explicit_servers:
        servers = SERVERS
    steps: list[Step] = []

    def per_server(name: str, run: Callable[..., Awaitable[Any]], **kw: Any) -> None:
        for kind in servers:
            for db in dbs if kind == "livespace" else ("sqlite",):
                steps.append((f"{name}/{kind}/{db}",
                              functools.partial(run, bench, kind, database=db, **kw)))

    if scenario == "fanout":
        per_server("fanout", scenarios.fanout, batch=o.batch)
    elif scenario == "idle":
        per_server("idle", scenarios.idle)
    elif scenario == "connect" and o.spread:
        per_server("connect-spread", spread.connect_spread)
    elif scenario == "connect":
        per_server("connect", scenarios.connect)
    elif scenario == "storm":
        per_server("storm", spread.storm)
    elif scenario == "rooms":
        for count in o.rooms:
            steps.append((f"rooms/{count}", functools.partial(spread.rooms, bench, count)))
    elif scenario == "durable" and o.spread:
        for db in o.databases or ("postgres",):
            steps.append((f"durable-spread/{db}",
                          functools.partial(spread.durable_spread, bench, db)))
    elif scenario == "durable":
        for db in o.databases or DATABASES:
            steps.append((f"durable/{db}", functools.partial(scenarios.durable, bench, db)))
    elif scenario == "replay":
        for db in dbs:
            steps.append((f"replay/{db}", functools.partial(scenarios.replay, bench, db)))
    elif scenario == "catchup":
        for db in o.databases or DATABASES:
            steps.append((f"catchup/{db}", functools.partial(catchup.catchup, bench, db)))
    else:
        per_server("fanout", scenarios.fanout, batch=False)
        if scenario == "all" or o.batch:
            for db in dbs:
                steps.append((f"fanout/livespace/{db}/batch",
                              functools.partial(scenarios.fanout, bench, "livespace",
                                                batch=True, database=db)))
        per_server("idle", scenarios.idle)
        per_server("connect", scenarios.connect)
        if scenario == "all":
            for db in o.databases or DATABASES:
                steps.append((f"durable/{db}", functools.partial(scenarios.durable, bench, db)))
            for db in dbs:
                steps.append((f"replay/{db}", functools.partial(scenarios.replay, bench, db)))
    return steps


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo_root()), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


async def wait_quiet(bench: Bench, limit: float) -> None:
    """Wait up to ``limit`` seconds until other processes use under 15% of a core for 2 s."""
    deadline = time.monotonic() + limit
    quiet_since: float | None = None
    said = False
    while time.monotonic() < deadline:
        before = busy_seconds()
        await asyncio.sleep(0.5)
        load = 100 * (busy_seconds() - before) / 0.5
        if load < scenarios.BUSY_PCT:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 2.0:
                return
        else:
            quiet_since = None
            if not said:
                bench.say(f"waiting up to {limit:.0f} s for a quiet machine "
                          f"(other processes use {load:.0f}% of a core)")
                said = True
    bench.say(f"the machine did not get quiet within {limit:.0f} s; going on")


async def run_steps(bench: Bench, steps: list[Step], quiet: float = 0.0) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for name, step in steps:
        if quiet > 0:
            await wait_quiet(bench, quiet)
        try:
            await step()
        except Exception as err:  # one failed run must not lose the others
            bench.say(f"{name} FAILED: {type(err).__name__}: {err}")
            errors.append({"run": name, "error": f"{type(err).__name__}: {err}"})
    return errors


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``livespace bench``; returns the exit status."""
    args = build_parser().parse_args(argv)
    generator = args.generator
    if generator == "auto":
        generator = "node" if node_available() else ""
    if generator == "node" and not node_available():
        generator = ""
    if not generator:
        print(f"livespace bench: {NODE_HOW}", file=sys.stderr)
        return 2
    out_dir: Path = args.output_dir or repo_root() / "bench" / "results"
    if args.nice < 0 and os.geteuid() != 0:
        print("livespace bench: --nice below 0 needs root", file=sys.stderr)
        return 2
    options = options_from(args, generator, out_dir)
    bench = Bench(options)
    limit = raise_fd_limit(1 << 20)
    wanted = options.idle_connections + 200
    if args.scenario in ("idle", "baseline", "all") and wanted > limit:
        bench.warn(f"--idle-connections {options.idle_connections} needs about {wanted} open "
                   f"files per process; the limit here is {limit}")
    elif args.scenario in ("idle", "baseline", "all") and options.idle_connections > 15_000:
        bench.warn("over ~15,000 idle connections the open-files limit may be reached")
    if options.pin:
        pin_self(GENERATOR_CORE)
    started_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    steps = plan(args.scenario, bench, explicit_servers=args.servers is not None)
    steps = [(f"{name} (run {i + 1})" if args.repeat > 1 else name, step)
             for i in range(max(1, args.repeat)) for name, step in steps]
    bench.say(f"livespace bench {args.scenario}: {len(steps)} run(s) with the {generator} "
              f"generator")
    errors = asyncio.run(run_steps(bench, steps, args.wait_quiet))
    summary = report.summarise(bench.records)
    ratio_table = report.ratios(summary)
    goals = report.targets(summary, ratio_table)
    stamp = started_at.strftime("%Y%m%d-%H%M%S")
    json_path = out_dir / f"{stamp}.json"
    document = {
        "tool": "livespace bench",
        "scenario": args.scenario,
        "command": ["livespace", "bench", *(sys.argv[2:] if argv is None else argv)],
        "started_at": started_at.isoformat(),
        "duration_s": round(time.monotonic() - started, 1),
        "git_commit": _git_commit(),
        "machine": machine(),
        "options": dataclasses.asdict(options),
        "summary": summary,
        "ratios": ratio_table,
        "targets": goals,
        "warnings": bench.warnings,
        "errors": errors,
        "runs": bench.records,
    }
    report.write_json(json_path, document)
    print(report.table(summary, ratio_table, goals))
    print(f"\nresults: {json_path}")
    if args.chart and bench.records:
        chart_path = json_path.with_suffix(".png")
        try:
            report.write_chart(chart_path, summary)
            print(f"chart:   {chart_path}")
        except ImportError:
            print("chart:   skipped (matplotlib is not installed: pip install matplotlib)")
    if bench.warnings:
        print(f"\n{len(bench.warnings)} warning(s):")
        for warning in bench.warnings:
            print(f"  - {warning.splitlines()[0]}")
    print(f"done in {time.monotonic() - started:.0f} s")
    return 1 if errors else 0
