"""Running the load generator: a subprocess on core 1 that speaks JSON lines.

Two implementations share one interface (``bench/loadgen/loadgen.js`` documents it): the
Node ``ws`` generator, fast enough to receive well over 100k frames/s on one core, and a
pure-Python one (:mod:`bench.pyloadgen`) for machines without Node and for
the smoke test. The config goes in a JSON file; the generator prints ``progress``,
``phase`` start/end, ``ready`` and finally ``result`` lines. Between a phase's start and
end this module takes the CPU time of the server and of the generator itself from /proc,
so each measured window comes with both (a generator above 90% of a core is saturated:
its figures are a floor, not the server's limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import CpuMark, busy_seconds, postgres_pids, rss_kb
from bench.servers import (
    GENERATOR_CORE,
    Server,
    pin_prefix,
    repo_root,
    set_group_nice,
)

SATURATED_PCT = 90.0
NODE_HOW = (
    "the Node load generator is not installed: run `make bench-deps` "
    "(npm ci --prefix bench/loadgen; needs Node.js >= 18 and npm), "
    "or pass --generator python (slower: figures above ~20k frames/s are the generator's limit)"
)


class GeneratorError(RuntimeError):
    """The load generator could not run or reported an error."""


def loadgen_dir() -> Path:
    return repo_root() / "bench" / "loadgen"


def node_available() -> bool:
    folder = loadgen_dir()
    return (
        shutil.which("node") is not None
        and (folder / "node_modules" / "ws").is_dir()
    )


def generator_argv(kind: str, config_path: Path) -> list[str]:
    if kind == "node":
        folder = loadgen_dir()
        if not node_available():
            raise GeneratorError(NODE_HOW)
        return ["node", str(folder / "loadgen.js"), str(config_path)]
    if kind == "python":
        return [sys.executable, str(Path(__file__).with_name("pyloadgen.py")), str(config_path)]
    raise GeneratorError(f"unknown generator {kind!r}")


@dataclass
class PhaseUsage:
    """CPU of the server and of the generator during one measured window."""

    server_cpu_pct: float
    generator_cpu_pct: float
    other_cpu_pct: float
    database_cpu_pct: float | None
    server_rss_kb: int
    seconds: float

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            "server_cpu_pct": round(self.server_cpu_pct, 1),
            "generator_cpu_pct": round(self.generator_cpu_pct, 1),
            "generator_saturated": self.generator_cpu_pct > SATURATED_PCT,
            "other_cpu_pct": round(self.other_cpu_pct, 1),
            **({} if self.database_cpu_pct is None
               else {"database_cpu_pct": round(self.database_cpu_pct, 1)}),
            "server_rss_kb": self.server_rss_kb,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class GeneratorRun:
    """A load generator process, its phases' CPU usage, and its result line."""

    kind: str
    process: asyncio.subprocess.Process
    server: Server
    phases: dict[str, PhaseUsage] = field(default_factory=dict)
    _open: dict[str, tuple[CpuMark, CpuMark, CpuMark, float, list[int], CpuMark]] = field(
        default_factory=dict
    )
    # (server, generator, this process, busy seconds of the whole machine, PostgreSQL pids
    # and their CPU) at a phase start
    _last: tuple[CpuMark, CpuMark] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def marks(self) -> tuple[CpuMark, CpuMark]:
        return CpuMark.take(self.server.pid), CpuMark.take(self.pid)

    def interval_usage(self) -> tuple[float, float]:
        """Server and generator CPU% since the previous call (for progress lines)."""
        now = self.marks()
        before = self._last or now
        self._last = now
        return before[0].percent_until(now[0]), before[1].percent_until(now[1])

    def phase(self, name: str, state: str) -> None:
        server, generator = self.marks()
        me, busy = CpuMark.take(os.getpid()), busy_seconds()
        if state == "start":
            db_pids = postgres_pids(self.server.pg_database) if self.server.pg_database else []
            self._open[name] = (server, generator, me, busy, db_pids, CpuMark.take_all(db_pids))
            return
        started = self._open.pop(name, None)
        if started is None:
            return
        server0, generator0, me0, busy0, db_pids, db0 = started
        seconds = server.wall - server0.wall
        server_pct = server0.percent_until(server)
        generator_pct = generator0.percent_until(generator)
        db_pct = db0.percent_until(CpuMark.take_all(db_pids)) if db_pids else None
        ours = server_pct + generator_pct + me0.percent_until(me) + (db_pct or 0.0)
        machine = 100.0 * (busy - busy0) / seconds if seconds > 0 else 0.0
        self.phases[name] = PhaseUsage(
            server_cpu_pct=server_pct,
            generator_cpu_pct=generator_pct,
            other_cpu_pct=max(0.0, machine - ours),
            database_cpu_pct=db_pct,
            server_rss_kb=rss_kb(self.server.pid),
            seconds=seconds,
        )

    async def stop(self) -> None:
        """Ask an idle-mode generator to close its connections and report."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.write(b"stop\n")
            with contextlib.suppress(ConnectionError):
                await self.process.stdin.drain()


EventHandler = Callable[[dict[str, Any], GeneratorRun], Awaitable[None]]


async def run_generator(
    kind: str,
    server: Server,
    config: dict[str, Any],
    *,
    pin: bool = True,
    nice: int = 0,
    on_event: EventHandler | None = None,
    timeout: float = 900.0,
) -> tuple[dict[str, Any], GeneratorRun]:
    """Run one generator to completion; its result line and the per-phase CPU usage."""
    with (
        tempfile.NamedTemporaryFile("w", suffix=".json", prefix="lsbench-") as handle,
        tempfile.TemporaryFile(prefix="lsbench-gen-") as errors,
    ):
        json.dump(config, handle)
        handle.flush()
        argv = generator_argv(kind, Path(handle.name))
        process = await asyncio.create_subprocess_exec(
            *pin_prefix(GENERATOR_CORE, pin, nice),
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
            limit=64 * 1024 * 1024,
            start_new_session=bool(nice),
        )
        if nice:
            set_group_nice(process.pid, nice)
        run = GeneratorRun(kind, process, server)
        result: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(timeout):
                assert process.stdout is not None
                while line := await process.stdout.readline():
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("kind") == "phase":
                        run.phase(str(event.get("name")), str(event.get("state")))
                    if event.get("kind") == "result":
                        result = event
                    if on_event is not None:
                        await on_event(event, run)
                    if result is not None:
                        break
        finally:
            if process.returncode is None:
                if process.stdin is not None:
                    process.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 5)
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        if result is None:
            errors.seek(0)
            stderr = errors.read()
            raise GeneratorError(
                f"{kind} generator exited with {process.returncode} and no result: "
                f"{stderr.decode(errors='replace')[-2000:]}"
            )
        if result.get("error"):
            raise GeneratorError(f"{kind} generator: {result['error']}")
        return result, run
