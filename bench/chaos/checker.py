"""What must hold over a chaos run's histories (pure: values in, violations out).

- The log is ``1..N`` with no gap; no write's name appears in it twice.
- Every acknowledged write is in the log exactly once, at the seq of its ack.
- A write that was refused (``unavailable``) or left unanswered and then retried with
  the same ref is in the log at most once (exactly once when it was acknowledged).
- Every reader saw a gapless prefix of the log, each event identical to the log's,
  across its reconnections (each resumed with ``since`` = the last seq it had).
- After healing, presence shows exactly the users who are connected (no ghosts).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Logged:
    """One durable event: its seq, event id and the name of the write that made it."""

    seq: int
    event_id: str
    name: str


@dataclass(slots=True)
class Write:
    """One mutation (a ``contact_created`` named ``name``), sent with ``ref`` until acked."""

    ref: str
    name: str
    acked_seq: int | None = None
    refused: list[str] = field(default_factory=list)  # error codes and "no answer"
    acked_at: float = 0.0  # monotonic time of the ack (for the run's report only)

    @property
    def retried(self) -> bool:
        return bool(self.refused)


@dataclass(slots=True)
class Segment:
    """What one connection of a reader received: resumed with ``since``."""

    since: int
    events: list[Logged] = field(default_factory=list)
    resync: bool = False


@dataclass(slots=True)
class Reader:
    name: str
    segments: list[Segment] = field(default_factory=list)


def check_log(log: list[Logged]) -> list[str]:
    problems = []
    seqs = [event.seq for event in log]
    if seqs != list(range(1, len(log) + 1)):
        problems.append(f"the log is not 1..{len(log)}: first gap or repeat after "
                        f"{_first_break(seqs)}")
    for name, count in Counter(event.name for event in log).items():
        if count > 1:
            problems.append(f"write {name} is in the log {count} times")
    return problems


def _first_break(seqs: list[int]) -> int:
    for i, seq in enumerate(seqs):
        if seq != i + 1:
            return i
    return len(seqs)


def check_writes(log: list[Logged], writes: list[Write]) -> list[str]:
    problems = []
    at = {event.seq: event for event in log}
    where: dict[str, list[int]] = {}
    for event in log:
        where.setdefault(event.name, []).append(event.seq)
    for write in writes:
        found = where.get(write.name, [])
        if write.acked_seq is not None:
            there = at.get(write.acked_seq)
            if there is None or there.name != write.name:
                problems.append(f"acknowledged write {write.name} (ref {write.ref}) is not at "
                                f"its acked seq {write.acked_seq}: the log has "
                                f"{there.name if there else 'nothing'} there")
            if len(found) != 1:
                problems.append(f"acknowledged write {write.name} is in the log "
                                f"{len(found)} times")
        elif len(found) > 1:
            problems.append(f"unacknowledged write {write.name} is in the log "
                            f"{len(found)} times")
    return problems


def check_reader(log: list[Logged], reader: Reader) -> list[str]:
    problems = []
    at = {event.seq: event for event in log}
    last = 0
    for n, segment in enumerate(reader.segments):
        where = f"reader {reader.name}, connection {n + 1}"
        if segment.resync:
            problems.append(f"{where}: told resync_required after since={segment.since}")
        if segment.since != last:
            problems.append(f"{where}: resumed with since={segment.since}, had seen {last}")
            last = segment.since
        for event in segment.events:
            if event.seq != last + 1:
                problems.append(f"{where}: got seq {event.seq} after {last} (gap, repeat or "
                                "order violation)")
                break
            logged = at.get(event.seq)
            if logged != event:
                problems.append(f"{where}: seq {event.seq} is {event} but the log has "
                                f"{logged}")
                break
            last = event.seq
    return problems


def check_presence(observed: dict[str, set[str]], connected: set[str]) -> list[str]:
    """``observed``: node -> users its ``/users`` shows; ``connected``: who is connected."""
    problems = []
    for node, users in sorted(observed.items()):
        if ghosts := users - connected:
            problems.append(f"node {node} shows ghosts: {sorted(ghosts)}")
        if missing := connected - users:
            problems.append(f"node {node} misses connected users: {sorted(missing)}")
    return problems


def check(log: list[Logged], writes: list[Write], readers: list[Reader],
          observed: dict[str, set[str]] | None = None,
          connected: set[str] | None = None) -> list[str]:
    """Every violation over a run, empty when it upheld every guarantee."""
    problems = check_log(log) + check_writes(log, writes)
    for reader in readers:
        problems += check_reader(log, reader)
    if observed is not None and connected is not None:
        problems += check_presence(observed, connected)
    return problems
