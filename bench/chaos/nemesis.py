"""The faults of a chaos run, one at a time, each healed before the next."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.chaos.services import Node, Postgres, Redis

FAULTS = ("kill", "pause", "drain", "redis", "postgres")


@dataclass(slots=True)
class Fault:
    kind: str
    target: str
    at: float  # monotonic
    healed: float = 0.0
    watched: bool = False  # the node's lurker was connected when it struck


class Nemesis:
    def __init__(self, nodes: list[Node], pg: Postgres, redis: Redis, *, bound_s: float,
                 seed: int, kinds: tuple[str, ...] = FAULTS) -> None:
        self.nodes = nodes
        self.pg = pg
        self.redis = redis
        self.bound_s = bound_s
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.faults: list[Fault] = []
        #: called with the target node just before a node fault: is it watched?
        self.before_fault: Callable[[Node], bool] = lambda node: False

    async def run(self, seconds: float, every_s: float) -> None:
        """Faults until ``seconds`` have passed, one every ``every_s`` (jittered)."""
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            await asyncio.sleep(every_s * self.rng.uniform(0.5, 1.0))
            kind = self.kinds[n % len(self.kinds)] if n < len(self.kinds) else \
                self.rng.choice(self.kinds)  # every kind once first, then at random
            n += 1
            await self.inject(kind)

    async def inject(self, kind: str) -> Fault:
        node = self.rng.choice(self.nodes)
        fault = Fault(kind, node.name if kind in ("kill", "pause", "drain") else kind,
                      time.monotonic())
        if kind in ("kill", "pause", "drain"):
            fault.watched = self.before_fault(node)
        self.faults.append(fault)
        if kind == "kill":
            node.kill()
            await asyncio.sleep(self.rng.uniform(1.0, 3.0))
            await asyncio.to_thread(node.start)
        elif kind == "pause":
            node.pause()  # past the bound: its users must leave, then come back
            await asyncio.sleep(self.bound_s + self.rng.uniform(1.0, 2.0))
            node.resume()
        elif kind == "drain":
            await asyncio.to_thread(node.drain)
            await asyncio.to_thread(node.start)
        elif kind == "redis":
            self.redis.stop()
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            await asyncio.to_thread(self.redis.start)
        elif kind == "postgres":
            await asyncio.to_thread(self.pg.stop, "immediate")
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            await asyncio.to_thread(self.pg.start)
        else:
            raise ValueError(f"unknown fault {kind!r}")
        fault.healed = time.monotonic()
        return fault
