"""Pure-Python load generator: the same modes and JSON-lines output as bench/loadgen/loadgen.js.

``python -m bench.pyloadgen CONFIG.json``. One asyncio process (uvloop when
installed) with the ``websockets`` client. It needs nothing but the project's own
dependencies, which makes it the smoke test's generator and the fallback without Node; it
saturates its core at about 20-30k received frames/s, so for real figures use the Node
generator (``make bench-deps``). Its CPU is measured like Node's, and the report says
when it was the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

T_MARK = re.compile(r'"bench_t":\s*(\d+)')
EVENT_MARK = '"event_id"'
Handler = Callable[[str], None]


def now_us() -> int:
    return time.perf_counter_ns() // 1000


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


@dataclass
class Latencies:
    values: list[float] = field(default_factory=list)

    def add(self, us: int) -> None:
        self.values.append(max(0, us) / 1000)

    def summary(self) -> dict[str, float | int]:
        if not self.values:
            return {"count": 0}
        ordered = sorted(self.values)

        def pct(p: float) -> float:
            return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]

        return {
            "count": len(ordered),
            "mean_ms": sum(ordered) / len(ordered),
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "p999_ms": pct(99.9),
            "max_ms": ordered[-1],
        }


@dataclass
class Conn:
    ws: ClientConnection
    welcome: dict[str, Any]
    reader: asyncio.Task[None] | None = None
    close_code: int | None = None


class Generator:
    def __init__(self, config: dict[str, Any]) -> None:
        self.cfg = config
        self.stop_event = asyncio.Event()
        self.closes: Counter[str] = Counter()

    def start_stdin_watch(self) -> None:
        loop = asyncio.get_running_loop()

        def watch() -> None:
            for line in sys.stdin:
                if line.strip() == "stop":
                    loop.call_soon_threadsafe(self.stop_event.set)
            import os

            os._exit(3)  # the benchmark went away: never outlive it

        threading.Thread(target=watch, daemon=True).start()

    async def open(self, url: str, on_message: Handler | None) -> Conn:
        timeout = float(self.cfg.get("connect_timeout_s") or 15)
        try:
            async with asyncio.timeout(timeout):
                ws = await connect(
                    url, compression=None, max_size=None, ping_interval=None, open_timeout=None
                )
                first = await ws.recv()
        except InvalidStatus as err:
            raise ConnectionError(f"http_{err.response.status_code}") from None
        except ConnectionClosed as err:
            raise ConnectionError(f"close_{err.rcvd.code if err.rcvd else 1006}") from None
        except TimeoutError:
            raise ConnectionError("timeout") from None
        except OSError as err:
            raise ConnectionError(type(err).__name__) from None
        welcome = json.loads(first)
        if isinstance(welcome, list):
            welcome = welcome[0] if welcome else {}
        if welcome.get("type") != "welcome":
            await ws.close()
            raise ConnectionError(f"first_frame_{welcome.get('type')}")
        conn = Conn(ws, welcome)
        conn.reader = asyncio.create_task(self._read(conn, on_message))
        return conn

    async def _read(self, conn: Conn, on_message: Handler | None) -> None:
        try:
            async for message in conn.ws:
                if on_message is not None:
                    on_message(message if isinstance(message, str) else message.decode())
        except ConnectionClosed:
            pass
        code = conn.ws.close_code
        conn.close_code = code
        if code is not None and code != 1000 and not self.stop_event.is_set():
            self.closes[str(code)] += 1

    async def open_all(
        self, urls: list[str], handler: Callable[[int], Handler | None]
    ) -> tuple[list[Conn | None], Counter[str], float]:
        conns: list[Conn | None] = [None] * len(urls)
        failures: Counter[str] = Counter()
        started = time.perf_counter()
        cursor = iter(range(len(urls)))

        async def worker() -> None:
            for index in cursor:
                try:
                    conns[index] = await self.open(urls[index], handler(index))
                except ConnectionError as err:
                    failures[str(err)] += 1

        concurrency = int(self.cfg.get("concurrency") or 50)
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(urls)))))
        return conns, failures, time.perf_counter() - started

    async def ticker(self, seconds: float, report: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(seconds)
            report()


async def _close(conns: list[Conn | None]) -> None:
    for conn in conns:
        if conn is not None:
            if conn.reader is not None:
                conn.reader.cancel()
            conn.ws.transport.abort()


@dataclass
class FanoutPhase:
    name: str
    closed_loop: bool
    start_us: int = field(default_factory=now_us)
    sent: int = 0
    delivered: int = 0
    latencies: Latencies = field(default_factory=Latencies)


async def fanout(gen: Generator) -> None:
    cfg = gen.cfg
    pad = "x" * max(0, int(cfg.get("payload_bytes") or 200) - 32)
    state: dict[str, Any] = {"phase": None, "delivered": 0, "sent": 0, "stale": 0}
    progressed = asyncio.Event()
    errors: Counter[str] = Counter()

    def on_subscriber(message: str) -> None:
        now = now_us()
        phase: FanoutPhase | None = state["phase"]
        for match in T_MARK.finditer(message):
            sent_at = int(match.group(1))
            state["delivered"] += 1
            if phase is not None and sent_at >= phase.start_us:
                phase.delivered += 1
                phase.latencies.add(now - sent_at)
            else:
                state["stale"] += 1
        progressed.set()

    def on_publisher(message: str) -> None:
        if '"error"' in message:
            frames = json.loads(message)
            for frame in frames if isinstance(frames, list) else [frames]:
                if frame.get("type") == "error":
                    errors[str(frame.get("code"))] += 1

    subs, failures, connect_s = await gen.open_all(cfg["targets"], lambda _: on_subscriber)
    publisher = await gen.open(cfg["publisher"], on_publisher)
    live = [c for c in subs if c is not None]
    result: dict[str, Any] = {
        "mode": "fanout",
        "subscribers": len(cfg["targets"]),
        "connected": len(live),
        "connect_failures": dict(failures),
        "connect_s": connect_s,
    }
    await asyncio.sleep(float(cfg.get("settle_s") or 1))

    def alive() -> int:
        return max(1, sum(1 for c in live if c.close_code is None))

    async def send_one() -> None:
        frame = (
            '{"type":"broadcast","data":{"event":"bench","payload":{"bench_t":'
            f'{now_us()},"pad":"{pad}"}}}}}}'
        )
        await publisher.ws.send(frame)
        state["sent"] += 1
        if state["phase"] is not None:
            state["phase"].sent += 1

    async def drain(phase: FanoutPhase) -> None:
        deadline = time.perf_counter() + float(cfg.get("drain_s") or 3)
        last, last_change = -1, time.perf_counter()
        while phase.delivered < phase.sent * alive() and time.perf_counter() < deadline:
            if phase.delivered != last:
                last, last_change = phase.delivered, time.perf_counter()
            elif time.perf_counter() - last_change > 0.5:
                break
            await asyncio.sleep(0.02)

    def progress(phase: FanoutPhase, started: float) -> Callable[[], None]:
        mark = {"count": 0, "t": started}

        def report() -> None:
            now = time.perf_counter()
            rate = (phase.delivered - mark["count"]) / max(1e-9, now - mark["t"])
            mark.update(count=phase.delivered, t=now)
            emit(kind="progress", phase=phase.name, elapsed_s=now - started,
                 delivered=phase.delivered, rate=rate, alive=alive())

        return report

    async def closed_loop(phase: FanoutPhase, seconds: float) -> None:
        window = int(cfg.get("window") or 16)
        state["phase"] = phase
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            if state["sent"] - state["delivered"] / alive() < window:
                await send_one()
                continue
            progressed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progressed.wait(), 0.25)

    closed_s = float(cfg.get("closed_s") or 0)
    if closed_s > 0:
        warm = FanoutPhase("warmup", True)
        await closed_loop(warm, float(cfg.get("warmup_s") or 1))
        await drain(warm)
        phase = FanoutPhase("closed", True)
        emit(kind="phase", name="closed", state="start")
        started = time.perf_counter()
        tick = asyncio.create_task(gen.ticker(1.0, progress(phase, started)))
        await closed_loop(phase, closed_s)
        seconds = time.perf_counter() - started
        counted = phase.delivered
        emit(kind="phase", name="closed", state="end")
        tick.cancel()
        await drain(phase)
        result["closed"] = {
            "seconds": seconds,
            "sent": phase.sent,
            "delivered": counted,
            "deliveries_per_s": counted / seconds,
            "messages_per_s": counted / seconds / alive(),
            "latency": phase.latencies.summary(),
            "alive": alive(),
        }

    open_s = float(cfg.get("open_s") or 0)
    if open_s > 0:
        msg_rate = float(cfg["rate"]) / alive()
        total = math.floor(open_s * msg_rate) + 1
        phase = FanoutPhase("open", False)
        state["phase"] = phase
        emit(kind="phase", name="open", state="start")
        started = time.perf_counter()
        tick = asyncio.create_task(gen.ticker(1.0, progress(phase, started)))
        while phase.sent < total:
            due = min(total, math.floor((time.perf_counter() - started) * msg_rate) + 1)
            while phase.sent < due:
                await send_one()
            await asyncio.sleep(0.001)
        seconds = time.perf_counter() - started
        emit(kind="phase", name="open", state="end")
        tick.cancel()
        expected = phase.sent * alive()
        await drain(phase)
        result["open"] = {
            "seconds": seconds,
            "target_deliveries_per_s": cfg["rate"],
            "messages_per_s": phase.sent / seconds,
            "sent": phase.sent,
            "expected": expected,
            "delivered": phase.delivered,
            "delivered_pct": 100 * phase.delivered / expected if expected else 0,
            "deliveries_per_s": phase.delivered / seconds,
            "latency": phase.latencies.summary(),
            "alive": alive(),
        }
    gen.stop_event.set()
    result.update(closes=dict(gen.closes), publisher_errors=dict(errors),
                  stale_deliveries=state["stale"])
    await _close([*subs, publisher])
    emit(kind="result", **result)


async def idle(gen: Generator) -> None:
    received = [0]

    def on_message(_: str) -> None:
        received[0] += 1

    conns, failures, connect_s = await gen.open_all(gen.cfg["targets"], lambda _: on_message)
    live = [c for c in conns if c is not None]
    emit(kind="ready", connected=len(live), connect_failures=dict(failures), connect_s=connect_s)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gen.stop_event.wait(), float(gen.cfg.get("hold_s") or 600))
    gen.stop_event.set()
    closes = dict(gen.closes)
    await _close(conns)
    emit(kind="result", mode="idle", connections=len(gen.cfg["targets"]), connected=len(live),
         connect_failures=dict(failures), connect_s=connect_s, closed_while_idle=closes,
         frames_while_idle=received[0])


async def connect_mode(gen: Generator) -> None:
    cfg = gen.cfg
    latencies = Latencies()
    failures: Counter[str] = Counter()
    counter = {"ok": 0, "next": 0}
    running = [True]

    async def worker() -> None:
        while running[0]:
            url = cfg["targets"][counter["next"] % len(cfg["targets"])]
            counter["next"] += 1
            started = now_us()
            try:
                conn = await gen.open(url, None)
            except ConnectionError as err:
                failures[str(err)] += 1
                await asyncio.sleep(0.01)
                continue
            latencies.add(now_us() - started)
            counter["ok"] += 1
            await conn.ws.close()
            if conn.reader is not None:
                conn.reader.cancel()

    emit(kind="phase", name="connect", state="start")
    started = time.perf_counter()
    workers = [asyncio.create_task(worker()) for _ in range(int(cfg.get("concurrency") or 50))]
    tick = asyncio.create_task(gen.ticker(1.0, lambda: emit(
        kind="progress", phase="connect", elapsed_s=time.perf_counter() - started,
        handshakes=counter["ok"])))
    await asyncio.sleep(float(cfg["duration_s"]))
    running[0] = False
    seconds = time.perf_counter() - started
    counted = counter["ok"]
    emit(kind="phase", name="connect", state="end")
    tick.cancel()
    gen.stop_event.set()
    await asyncio.gather(*workers, return_exceptions=True)
    emit(kind="result", mode="connect", seconds=seconds, handshakes=counted,
         handshakes_per_s=counted / seconds, failures=dict(failures),
         latency=latencies.summary(), concurrency=int(cfg.get("concurrency") or 50))


@dataclass
class Writer:
    index: int
    conn: Conn | None = None
    in_flight: dict[str, tuple[int, bool]] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    counter: int = 0
    room: asyncio.Event = field(default_factory=asyncio.Event)


async def durable(gen: Generator) -> None:
    cfg = gen.cfg
    pipeline = int(cfg.get("pipeline") or 32)
    update_ratio = float(cfg.get("update_ratio") or 0)
    target = int(cfg.get("target_events") or 0)
    errors: Counter[str] = Counter()
    stats: dict[str, Any] = {"acks": 0, "max_seq": 0, "phase_start": 0, "phase_acks": 0}
    latencies = [Latencies()]
    writers = [Writer(i) for i in range(len(cfg["targets"]))]
    stopping = [False]
    reached = asyncio.Event()
    # Refs must differ between runs: a ref seen before is an idempotent retry, not a write.
    run_id = f"{random.getrandbits(32):08x}"

    def handler(index: int) -> Handler:
        writer = writers[index]

        def on_message(message: str) -> None:
            if '"ack"' not in message and '"error"' not in message:
                return
            frames = json.loads(message)
            now = now_us()
            for frame in frames if isinstance(frames, list) else [frames]:
                sent = writer.in_flight.pop(str(frame.get("ref")), None)
                if sent is None or frame.get("type") not in ("ack", "error"):
                    continue
                if frame["type"] == "ack":
                    stats["acks"] += 1
                    if target and stats["acks"] >= target:
                        reached.set()
                    seq = frame.get("seq")
                    if isinstance(seq, int):
                        stats["max_seq"] = max(stats["max_seq"], seq)
                    if sent[0] >= stats["phase_start"]:
                        stats["phase_acks"] += 1
                        latencies[0].add(now - sent[0])
                    data = frame.get("data")
                    if sent[1] and isinstance(data, dict) and data.get("id"):
                        writer.ids = [*writer.ids[-255:], str(data["id"])]
                else:
                    errors[str(frame.get("code"))] += 1
            writer.room.set()

        return on_message

    async def send_op(writer: Writer) -> None:
        assert writer.conn is not None
        i = writer.counter
        writer.counter += 1
        ref = f"{run_id}-w{writer.index}-{i}"
        create = not (writer.ids and random.random() < update_ratio)
        if create:
            frame = {"type": "contact_created", "ref": ref, "data": {
                "name": f"Bench {writer.index}-{i}",
                "email": f"w{writer.index}.{i}@bench.example",
                "company": "Bench Inc", "tags": ["bench"]}}
        else:
            frame = {"type": "contact_updated", "ref": ref, "data": {
                "id": random.choice(writer.ids),
                "changes": {"company": f"Company {i}", "phone": f"+1555{i}"}}}
        writer.in_flight[ref] = (now_us(), create)
        await writer.conn.ws.send(json.dumps(frame))

    async def write(writer: Writer) -> None:
        while not stopping[0]:
            if len(writer.in_flight) >= pipeline or (
                target and stats["acks"] + sum(len(w.in_flight) for w in writers) >= target
            ):
                writer.room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(writer.room.wait(), 0.1)
                continue
            try:
                await send_op(writer)
            except ConnectionClosed:
                return

    async def drain() -> None:
        for _ in range(250):  # up to 5 s for the frames in flight to be acknowledged
            if not any(w.in_flight for w in writers):
                return
            await asyncio.sleep(0.02)

    conns, failures, _ = await gen.open_all(cfg["targets"], handler)
    for writer, conn in zip(writers, conns, strict=True):
        writer.conn = conn
    active = [w for w in writers if w.conn is not None]
    tasks = [asyncio.create_task(write(w)) for w in active]
    warmup = float(cfg.get("warmup_s") or 0)
    if not target and warmup > 0:
        await asyncio.sleep(warmup)
    stats["phase_start"] = now_us()
    latencies[0] = Latencies()
    start_acks = stats["acks"]
    emit(kind="phase", name="durable", state="start")
    started = time.perf_counter()
    tick = asyncio.create_task(gen.ticker(1.0, lambda: emit(
        kind="progress", phase="durable", elapsed_s=time.perf_counter() - started,
        acks=stats["acks"] - start_acks, max_seq=stats["max_seq"])))
    if target:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reached.wait(), float(cfg.get("timeout_s") or 600))
    else:
        await asyncio.sleep(float(cfg["duration_s"]))
    seconds = time.perf_counter() - started
    counted = stats["acks"] - start_acks
    emit(kind="phase", name="durable", state="end")
    stopping[0] = True
    tick.cancel()
    for task in tasks:
        task.cancel()
    await drain()
    result: dict[str, Any] = {"seconds": seconds, "acks": counted,
                              "events_per_s": counted / seconds,
                              "latency": latencies[0].summary()}
    rate, open_s = float(cfg.get("rate") or 0), float(cfg.get("open_s") or 0)
    if not target and rate > 0 and open_s > 0 and active:
        stats["phase_start"] = now_us()
        latencies[0] = Latencies()
        open_acks = stats["acks"]
        total, sent, skipped = math.floor(open_s * rate), 0, 0
        emit(kind="phase", name="durable_open", state="start")
        started = time.perf_counter()
        while sent < total:
            due = min(total, math.floor((time.perf_counter() - started) * rate) + 1)
            while sent < due:
                writer = active[sent % len(active)]
                sent += 1
                if len(writer.in_flight) >= 4096:
                    skipped += 1
                    continue
                with contextlib.suppress(ConnectionClosed):
                    await send_op(writer)
            await asyncio.sleep(0.001)
        open_seconds = time.perf_counter() - started
        emit(kind="phase", name="durable_open", state="end")
        await drain()
        acked = stats["acks"] - open_acks
        result["open"] = {"seconds": open_seconds, "target_events_per_s": rate, "sent": sent,
                          "skipped_overloaded": skipped, "acks": acked,
                          "events_per_s": acked / open_seconds,
                          "acked_pct": 100 * acked / sent if sent else 0,
                          "latency": latencies[0].summary()}
    gen.stop_event.set()
    await _close(conns)
    emit(kind="result", mode="durable", writers=len(writers), connected=len(active),
         connect_failures=dict(failures), pipeline=pipeline, update_ratio=update_ratio,
         **result, errors=dict(errors), closes=dict(gen.closes),
         max_seq=stats["max_seq"], unacked=sum(len(w.in_flight) for w in writers))


async def replay(gen: Generator) -> None:
    received = [0]
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    expected: list[int | None] = [None]

    def on_message(message: str) -> None:
        received[0] += message.count(EVENT_MARK)
        goal = expected[0]
        if goal is not None and received[0] >= goal and not done.done():
            done.set_result(time.perf_counter())

    emit(kind="phase", name="replay", state="start")
    started = time.perf_counter()
    conn = await gen.open(gen.cfg["targets"][0], on_message)
    welcome_ms = (time.perf_counter() - started) * 1000
    info = conn.welcome.get("replay") or {}
    goal = int(info["count"]) if isinstance(info.get("count"), int) else int(
        gen.cfg.get("expect") or 0)
    expected[0] = goal
    if received[0] >= goal and not done.done():
        done.set_result(time.perf_counter())
    assert conn.reader is not None
    waiters: set[asyncio.Future[Any]] = {done, conn.reader}
    await asyncio.wait(waiters, timeout=float(gen.cfg.get("timeout_s") or 120),
                       return_when=asyncio.FIRST_COMPLETED)
    finished = done.result() if done.done() else time.perf_counter()
    emit(kind="phase", name="replay", state="end")
    gen.stop_event.set()
    await _close([conn])
    total_ms = (finished - started) * 1000
    emit(kind="result", mode="replay", expected=goal, received=received[0],
         resync_required=bool(conn.welcome.get("resync_required")),
         welcome_seq=conn.welcome.get("seq"), welcome_ms=welcome_ms, total_ms=total_ms,
         events_per_s=received[0] / (total_ms / 1000), complete=done.done(),
         close_code=conn.close_code)


MODES: dict[str, Callable[[Generator], Awaitable[None]]] = {
    "fanout": fanout,
    "idle": idle,
    "connect": connect_mode,
    "durable": durable,
    "replay": replay,
}


async def run(config: dict[str, Any]) -> None:
    gen = Generator(config)
    gen.start_stdin_watch()
    mode = MODES.get(str(config.get("mode")))
    if mode is None:
        emit(kind="result", error=f"unknown mode {config.get('mode')}")
        return
    await mode(gen)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = json.loads(Path(args[0]).read_text())
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    else:
        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run(config))
        time.sleep(0.3)  # so that the caller can still read this process's CPU time
    except Exception as err:  # reported to the benchmark as a result line
        emit(kind="result", error=f"{type(err).__name__}: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
