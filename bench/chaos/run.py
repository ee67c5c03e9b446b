"""One chaos run: set up the cluster, run the workload under the nemesis, heal, check.

``livespace bench chaos --minutes N`` runs it from the command line and writes the
histories and the verdict to ``bench/results/chaos-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from bench.chaos.checker import Logged, Write, check
from bench.chaos.nemesis import FAULTS, Nemesis
from bench.chaos.services import Node, Postgres, Redis
from bench.chaos.workload import Lurker, Peer, ReaderClient, Writer


@dataclass
class Options:
    seconds: float = 60.0
    nodes: int = 3
    writers: int = 3
    readers: int = 3
    bound_s: float = 10.0  # LIVESPACE_PRESENCE_TTL_S
    fault_every_s: float = 4.0
    seed: int = 1
    faults: tuple[str, ...] = FAULTS
    write_pause_s: float = 0.02
    root: Path | None = None


@dataclass
class Outcome:
    violations: list[str]
    writes: int
    acked: int
    retried: int
    events: int
    faults: list[dict[str, Any]]
    refusals: dict[str, int] = field(default_factory=dict)  # refused attempts by code
    #: after each kill / pause: seconds until a reader saw that node's lurker leave
    leave_after_s: dict[str, list[float]] = field(default_factory=dict)
    presence_converged_s: float | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Run:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.root = Path(options.root or tempfile.mkdtemp(prefix="livespace-chaos-"))
        self.secret = secrets.token_urlsafe(48)
        self.root.mkdir(parents=True, exist_ok=True)
        self.pg = Postgres()
        self.redis = Redis(self.root)
        self.nodes: list[Node] = []

    def token(self, user: str) -> str:
        now = int(time.time())
        return jwt.encode({"sub": user, "name": user, "iat": now, "exp": now + 86400},
                          self.secret, algorithm="HS256")

    def api(self, node: Node, user: str = "owner") -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=node.http, timeout=10,
                                 headers={"Authorization": f"Bearer {self.token(user)}"})

    def setup(self) -> None:
        self.pg.init()
        self.redis.start()
        env = {"JWT_SECRET": self.secret, "DATABASE_URL": self.pg.url,
               "REDIS_URL": self.redis.url, "LIVESPACE_REDIS_PREFIX": "chaos",
               "LIVESPACE_PRESENCE_TTL_S": str(self.o.bound_s),
               "LIVESPACE_RATE_LIMIT": "10000", "LIVESPACE_USER_RATE_LIMIT": "10000",
               "LIVESPACE_HTTP_RATE_LIMIT": "10000"}
        self.nodes = [Node(self.root, env, i) for i in range(self.o.nodes)]
        for node in self.nodes:
            node.start()

    def teardown(self, keep: bool = False) -> None:
        for node in self.nodes:
            node.kill()
        self.redis.stop()
        self.pg.remove()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)

    async def workspace(self, users: list[str]) -> str:
        async with self.api(self.nodes[0]) as api:
            r = await api.post("/api/workspaces", json={"name": "chaos"})
            r.raise_for_status()
            ws = str(r.json()["id"])
            for user in users:
                (await api.put(f"/api/workspaces/{ws}/members/{user}",
                               json={"role": "member"})).raise_for_status()
        return ws

    async def log(self, ws: str) -> list[Logged]:
        out: list[Logged] = []
        async with self.api(self.nodes[0]) as api:
            since = 0
            while True:
                r = await api.get(f"/api/workspaces/{ws}/events",
                                  params={"since": since, "limit": 1000})
                r.raise_for_status()
                page = r.json()
                out += [Logged(e["seq"], e["event_id"], str(e["data"].get("name")))
                        for e in page["events"]]
                if not page["has_more"]:
                    return out
                since = page["events"][-1]["seq"]

    async def online(self, ws: str) -> dict[str, set[str]]:
        seen: dict[str, set[str]] = {}
        for node in self.nodes:
            async with self.api(node) as api:
                r = await api.get(f"/ws/workspace/{ws}/users")
                r.raise_for_status()
                seen[node.name] = {u["id"] for u in r.json()["users"]}
        return seen

    async def go(self) -> Outcome:
        o = self.o
        started = time.monotonic()
        names = ([f"writer{i}" for i in range(o.writers)] +
                 [f"reader{i}" for i in range(o.readers)] +
                 [f"lurker{i}" for i in range(o.nodes)])
        ws = await self.workspace(names)
        peer = Peer(self.nodes, ws, self.token)
        writers = [Writer(peer, f"writer{i}", i, o.write_pause_s) for i in range(o.writers)]
        readers = [ReaderClient(peer, f"reader{i}", i) for i in range(o.readers)]
        lurkers = [Lurker(peer, f"lurker{i}", i, o.bound_s + 2) for i in range(o.nodes)]
        tasks = [asyncio.create_task(c.run()) for c in lurkers]
        tasks += [asyncio.create_task(c.run()) for c in readers]
        writing = [asyncio.create_task(w.run()) for w in writers]
        await asyncio.sleep(1.0)
        nemesis = Nemesis(self.nodes, self.pg, self.redis, bound_s=o.bound_s, seed=o.seed,
                          kinds=o.faults)
        nemesis.before_fault = lambda node: lurkers[self.nodes.index(node)].present_at(
            time.monotonic())
        await nemesis.run(o.seconds, o.fault_every_s)
        healed = time.monotonic()
        await asyncio.sleep(1.0)
        for writer in writers:
            writer.done = True
        await asyncio.wait_for(asyncio.gather(*writing), 120)
        log = await self.log(ws)
        deadline = time.monotonic() + 30
        caught_up = [r for r in readers if r.last >= len(log)]
        while len(caught_up) < len(readers) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # the readers' tasks move on meanwhile
            caught_up = [r for r in readers if r.last >= len(log)]
        # presence: exactly the connected users, within the bound after healing
        converged = None
        observed: dict[str, set[str]] = {}
        connected: set[str] = set()
        deadline = healed + o.bound_s + 10
        while time.monotonic() < deadline:
            connected = {c.history.name for c in readers if c.connected}
            connected |= {c.name for c in lurkers if c.connected}
            observed = await self.online(ws)
            if all(users == connected for users in observed.values()):
                converged = time.monotonic() - healed
                break
            await asyncio.sleep(0.25)
        peer.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        all_writes = [w for writer in writers for w in writer.writes]
        violations = check(log, all_writes, [r.history for r in readers], observed, connected)
        return Outcome(
            violations=violations, writes=len(all_writes),
            acked=sum(w.acked_seq is not None for w in all_writes),
            retried=sum(w.retried for w in all_writes), events=len(log),
            faults=[{"kind": f.kind, "target": f.target, "at_s": round(f.at - started, 2),
                     "healed_s": round(f.healed - f.at, 2),
                     "writes_acked_after_heal_s": _first_ack_after(all_writes, f.healed)}
                    for f in nemesis.faults],
            refusals=dict(Counter(code for w in all_writes for code in w.refused)),
            leave_after_s=_leave_latencies(nemesis, readers, o.bound_s + 10),
            presence_converged_s=None if converged is None else round(converged, 2),
            seconds=round(time.monotonic() - started, 1))


def _first_ack_after(writes: list[Write], healed: float) -> float | None:
    """How long after a fault was healed the next write was acknowledged."""
    after = [w.acked_at for w in writes if w.acked_seq is not None and w.acked_at >= healed]
    return round(min(after) - healed, 2) if after else None


def _leave_latencies(nemesis: Nemesis, readers: list[ReaderClient],
                     window_s: float) -> dict[str, list[float]]:
    """For each kill or pause: how long until a reader saw the lurker of that node leave
    (within ``window_s``; a leave no reader saw, as when Redis was down at that moment
    and took the announcement with it, is left out)."""
    out: dict[str, list[float]] = {"kill": [], "pause": []}
    for fault in nemesis.faults:
        if fault.kind not in out or not fault.watched:
            continue  # its node's lurker was away (an earlier fault): nothing to time
        lurker = "lurker" + fault.target.rsplit("-", 1)[1]
        seen = [t for r in readers for t, event, user in r.presence
                if event == "leave" and user == lurker and fault.at <= t <= fault.at + window_s]
        if seen:
            out[fault.kind].append(round(min(seen) - fault.at, 2))
    return out


def _spread(values: list[float]) -> str:
    if not values:
        return "none seen"
    ordered = sorted(values)
    return (f"n={len(ordered)} median {ordered[len(ordered) // 2]:.2f} "
            f"max {ordered[-1]:.2f}")


def run(options: Options, *, keep: bool = False) -> Outcome:
    chaos = Run(options)
    try:
        chaos.setup()
        return asyncio.run(chaos.go())
    finally:
        chaos.teardown(keep=keep)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="livespace bench chaos",
                                description="faults every few seconds under writers and "
                                "readers on several nodes; checks the histories")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--writers", type=int, default=3)
    p.add_argument("--readers", type=int, default=3)
    p.add_argument("--every", type=float, default=4.0, help="seconds between faults")
    p.add_argument("--bound", type=float, default=10.0, help="LIVESPACE_PRESENCE_TTL_S")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--faults", default=",".join(FAULTS))
    p.add_argument("--output-dir", type=Path, default=Path("bench/results"))
    p.add_argument("--keep", action="store_true", help="keep the run's directory and logs")
    args = p.parse_args(argv)
    options = Options(seconds=args.minutes * 60, nodes=args.nodes, writers=args.writers,
                      readers=args.readers, bound_s=args.bound, fault_every_s=args.every,
                      seed=args.seed, faults=tuple(args.faults.split(",")))
    outcome = run(options, keep=args.keep)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(outcome.to_json(), indent=2))
    kinds: dict[str, int] = {}
    back: dict[str, list[float]] = {}
    for fault in outcome.faults:
        kinds[fault["kind"]] = kinds.get(fault["kind"], 0) + 1
        if fault["writes_acked_after_heal_s"] is not None:
            back.setdefault(fault["kind"], []).append(fault["writes_acked_after_heal_s"])
    leaves = {kind: _spread(values) for kind, values in outcome.leave_after_s.items()}
    print(f"chaos: {outcome.seconds} s, {len(outcome.faults)} faults {kinds}, "
          f"{outcome.writes} writes ({outcome.acked} acked, {outcome.retried} retried), "
          f"{outcome.events} events in the log; refused attempts {outcome.refusals}; "
          f"leave after a fault (s): {leaves}; first ack after healing (s): "
          f"{ {kind: _spread(v) for kind, v in back.items()} }; "
          f"presence converged {outcome.presence_converged_s} s "
          f"after healing; {len(outcome.violations)} violations -> {path}")
    for violation in outcome.violations[:20]:
        print("  " + violation)
    return 1 if outcome.violations else 0
