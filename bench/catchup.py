"""``livespace bench catchup``: a client far behind catching up, full vs compacted replay;
and a 1,000-contact import.

Setup: one workspace, 1,000 contacts made by one ``POST .../contacts/import`` (timed:
the import target), then updates spread over them by pipelined socket frames until the
log holds ``--catchup-events`` (100,000) events. Then, alternately, a client connects
with ``since=0`` (full replay) and with ``since=0&compact=1`` (compacted), ``--repeat``
times each, and reads until it is live (``welcome.replay.count`` events in): time from
the start of the handshake to live, and the bytes of every frame it received. The
client runs in this process, pinned to the generator's core (core 1); the server is on
core 0. Both replays end in the same state; the bytes ratio is the compaction's gain.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import websockets

from bench.workspaces import Workspace, create_workspace

if TYPE_CHECKING:
    from bench.scenarios import Bench, Record

CONTACTS = 1000
EVENTS = 100_000
RUNS = 2
PER_FRAME = 100  # updates per batched socket frame while filling
WINDOW = 4000  # updates in flight while filling


async def _import(workspace: Workspace, owner: str, count: int) -> tuple[float, list[str]]:
    """``POST .../contacts/import`` of ``count`` contacts: (seconds, their ids)."""
    people = [{"name": f"Contact {i}", "email": f"c{i}@example.com", "company": "Acme",
               "tags": ["bench"], "fields": {"n": i}} for i in range(count)]
    async with httpx.AsyncClient(base_url=workspace.server.http_url, timeout=60.0) as http:
        started = time.perf_counter()
        r = await http.post(f"/api/workspaces/{workspace.id}/contacts/import",
                            json={"contacts": people}, headers=workspace.auth(owner))
        elapsed = time.perf_counter() - started
    if r.status_code != 201:
        raise RuntimeError(f"import: HTTP {r.status_code} {r.text[:300]}")
    return elapsed, [c["id"] for c in r.json()["contacts"]]


async def _fill(workspace: Workspace, writer: str, ids: list[str], count: int) -> None:
    """``count`` contact_updated, round robin over ``ids``, pipelined in batch frames."""
    url = workspace.socket_url(writer, batch=True)
    async with websockets.connect(url, max_size=2**24, ping_interval=None) as ws:
        await ws.recv()  # welcome
        acked = sent = 0
        room = asyncio.Event()
        room.set()

        async def read() -> None:
            nonlocal acked
            while acked < count:
                obj = orjson.loads(await ws.recv())
                for frame in obj if isinstance(obj, list) else [obj]:
                    if frame.get("type") == "ack":
                        acked += 1
                        if sent - acked < WINDOW:
                            room.set()
                    elif frame.get("type") == "error":
                        raise RuntimeError(f"fill: {frame}")

        reader = asyncio.create_task(read())
        while sent < count:
            await room.wait()
            batch = [{"type": "contact_updated", "ref": f"f{n}",
                      "data": {"id": ids[n % len(ids)], "changes": {"company": f"v{n}"}}}
                     for n in range(sent, min(count, sent + PER_FRAME))]
            sent += len(batch)
            await ws.send(orjson.dumps(batch).decode())
            if sent - acked >= WINDOW:
                room.clear()
        await reader


async def _catch_up(workspace: Workspace, reader: str, compact: bool) -> dict[str, Any]:
    """Connect with since=0 and read until live: seconds and bytes received."""
    url = workspace.socket_url(reader, since=0) + ("&compact=1" if compact else "")
    started = time.perf_counter()
    received = frames = 0
    async with websockets.connect(url, max_size=2**24, ping_interval=None) as ws:
        raw = await ws.recv()
        received += len(raw)
        welcome = orjson.loads(raw)
        replay = welcome["replay"]
        state: dict[str, int] = {}
        while frames < replay["count"]:
            raw = await ws.recv()
            received += len(raw)
            event = orjson.loads(raw)
            if "seq" in event:
                frames += 1
                if event["type"].startswith("contact_"):
                    state[event["data"]["id"]] = event["data"]["version"]
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "bytes": received, "frames": frames,
            "to_seq": replay["to_seq"], "contacts": len(state),
            "versions": sum(state.values())}


async def catchup(bench: Bench, database: str) -> Record:
    o = bench.options
    runs = max(1, o.catchup_runs)
    async with bench.server("livespace", database) as server:
        label = f"catchup/{server.label}"
        workspace = await create_workspace(server, 2)
        owner, (writer, reader) = workspace.owner, workspace.members
        seconds, ids = await _import(workspace, owner, CONTACTS)  # the contacts of the log
        imports = [seconds]
        other = await create_workspace(server, 0, name="imports", prefix="i")
        for _ in range(runs):  # more imports, elsewhere: the log stays over 1,000 contacts
            imports.append((await _import(other, other.owner, CONTACTS))[0])
        bench.say(f"{label}: import of {CONTACTS:,} contacts: "
                  + ", ".join(f"{s * 1000:.0f} ms" for s in imports))
        updates = o.catchup_events - CONTACTS
        started = time.monotonic()
        await _fill(workspace, writer, ids, updates)
        bench.say(f"{label}: log of {o.catchup_events:,} events written in "
                  f"{time.monotonic() - started:.1f} s")
        results: dict[str, list[dict[str, Any]]] = {"full": [], "compacted": []}
        for _ in range(runs):
            for mode in ("full", "compacted"):
                result = await _catch_up(workspace, reader, mode == "compacted")
                results[mode].append(result)
                bench.say(f"{label}: {mode}: live after {result['seconds']:.3f} s, "
                          f"{result['bytes'] / 1e6:.2f} MB in {result['frames']:,} frames")
        full, compacted = results["full"], results["compacted"]
        if full[0]["versions"] != compacted[0]["versions"]:
            bench.warn(f"{label}: full and compacted replays ended in different states")
        summary = {
            "import_1000_ms": round(statistics.median(imports) * 1000, 1),
            "full_s": round(statistics.median(r["seconds"] for r in full), 3),
            "compacted_s": round(statistics.median(r["seconds"] for r in compacted), 3),
            "full_bytes": statistics.median(r["bytes"] for r in full),
            "compacted_bytes": statistics.median(r["bytes"] for r in compacted),
        }
        summary["bytes_ratio"] = round(summary["full_bytes"] / summary["compacted_bytes"], 1)
        summary["time_ratio"] = round(summary["full_s"] / summary["compacted_s"], 1)
        bench.say(f"{label}: medians of {runs}: {summary}")
        return bench.record("catchup", server, params={
            "contacts": CONTACTS, "events": o.catchup_events, "runs": runs},
            imports_s=imports, runs=results, summary=summary)
