"""CPU time and memory of a process, read from /proc, and a description of the machine."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads) so far; 0 once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS); 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def busy_seconds() -> float:
    """CPU seconds all cores together have spent in processes since boot (/proc/stat).

    User, nice and system time only: interrupt and softirq time is left out because on
    loopback much of it is the benchmark's own network traffic, not another process.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]
    except OSError:
        return 0.0
    return sum(int(v) for v in fields) / CLOCK_TICKS


PG_SHARED = ("walwriter", "wal writer", "checkpointer", "background writer")


def postgres_pids(database: str) -> list[int]:
    """PostgreSQL processes working for ``database``: its backends and the shared writers."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and (
            f" {database} " in title or any(title.rstrip().endswith(s) for s in PG_SHARED)
        ):
            pids.append(int(entry.name))
    return pids


@dataclass
class CpuMark:
    """A point in time and the CPU seconds a process had used by then."""

    wall: float
    cpu: float

    @classmethod
    def take(cls, pid: int) -> CpuMark:
        return cls(time.monotonic(), cpu_seconds(pid))

    @classmethod
    def take_all(cls, pids: list[int]) -> CpuMark:
        return cls(time.monotonic(), sum(cpu_seconds(pid) for pid in pids))

    def percent_until(self, later: CpuMark) -> float:
        """CPU used between the two marks, in percent of one core."""
        elapsed = later.wall - self.wall
        used = later.cpu - self.cpu  # negative when the process was gone at the later mark
        return 100.0 * used / elapsed if elapsed > 0 and used > 0 else 0.0


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft open-files limit towards ``wanted`` (up to the hard limit).

    Children (the server and the load generator) inherit it. Returns the soft limit now.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def pin_self(core: int) -> None:
    """Run the orchestrator on the load generator's core, away from the server's."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


def _first_line(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _command_version(*argv: str) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True
                              , text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    mem_kb = _first_line("/proc/meminfo", "MemTotal").split()[0]
    return {
        "cpu": _first_line("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem_kb) / 1024 / 1024, 1) if mem_kb.isdigit() else None,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "node": _command_version("node", "--version"),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE),
    }
