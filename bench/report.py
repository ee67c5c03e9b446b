"""From run records to what a person reads: a summary, ratios, the issue's targets, a
table on the terminal, the JSON result file and a PNG chart."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

Record = dict[str, Any]
Summary = dict[str, dict[str, dict[str, Any]]]
BASELINES = ("fastapi", "websockets")


def _label(record: Record) -> str:
    label = str(record["label"])
    return f"{label} batch=1" if record.get("batch") else label


def _median(values: list[Any]) -> Any:
    """The median of numbers (recursively for dicts); the last value of anything else."""
    if all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {k: _median([v[k] for v in values if k in v]) for k in keys}
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(values) or not numbers:
        return values[-1] if values else None
    middle = statistics.median(numbers)
    if all(isinstance(n, int) for n in numbers) and float(middle).is_integer():
        return int(middle)
    return middle


def summarise(records: list[Record]) -> Summary:
    """The headline figures of each run, keyed by scenario, then by server label.

    With ``--repeat`` a run appears several times: each figure is then the median of the
    repeats (and ``runs`` says how many there were).
    """
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        scenario, label = record["scenario"], _label(record)
        result = record.get("result") or {}
        row: dict[str, Any]
        if scenario == "fanout":
            closed, opened = result.get("closed") or {}, result.get("open") or {}
            lat = opened.get("latency") or {}
            row = {
                "deliveries_per_s": closed.get("deliveries_per_s"),
                "closed_server_cpu_pct": closed.get("server_cpu_pct"),
                "closed_generator_cpu_pct": closed.get("generator_cpu_pct"),
                "open_rate": opened.get("target_deliveries_per_s"),
                "p50_ms": lat.get("p50_ms"),
                "p90_ms": lat.get("p90_ms"),
                "p99_ms": lat.get("p99_ms"),
                "max_ms": lat.get("max_ms"),
                "delivered_pct": opened.get("delivered_pct"),
                "open_server_cpu_pct": opened.get("server_cpu_pct"),
                "open_generator_cpu_pct": opened.get("generator_cpu_pct"),
                "closed_other_cpu_pct": closed.get("other_cpu_pct"),
                "open_other_cpu_pct": opened.get("other_cpu_pct"),
                "server_rss_kb": opened.get("server_rss_kb") or closed.get("server_rss_kb"),
            }
        elif scenario == "idle":
            row = {
                "connections": result.get("connected"),
                "kb_per_connection": record.get("kb_per_connection"),
                "rss_kb_before": (record.get("rss_kb") or {}).get("before"),
                "rss_kb_after": (record.get("rss_kb") or {}).get("after"),
            }
        elif scenario == "rooms":
            row = {k: result.get(k) for k in (
                "connected", "server_cpu_pct", "postgres_cpu_pct", "pg_transactions_per_s",
                "redis_commands_per_s")}
        elif scenario in ("connect", "connect_spread", "storm"):
            row = {
                "handshakes_per_s": result.get("handshakes_per_s"),
                "p99_ms": (result.get("latency") or {}).get("p99_ms"),
                "server_cpu_pct": result.get("server_cpu_pct"),
                "generator_cpu_pct": result.get("generator_cpu_pct"),
                "other_cpu_pct": result.get("other_cpu_pct"),
            }
        elif scenario in ("durable", "durable_spread"):
            lat = result.get("latency") or {}
            opened = result.get("open") or {}
            open_lat = opened.get("latency") or {}
            row = {
                "events_per_s": result.get("events_per_s"),
                "p50_ms": lat.get("p50_ms"),
                "p99_ms": lat.get("p99_ms"),
                "open_rate": opened.get("target_events_per_s"),
                "open_events_per_s": opened.get("events_per_s"),
                "open_acked_pct": opened.get("acked_pct"),
                "open_p50_ms": open_lat.get("p50_ms"),
                "open_p99_ms": open_lat.get("p99_ms"),
                "open_server_cpu_pct": opened.get("server_cpu_pct"),
                "server_cpu_pct": result.get("server_cpu_pct"),
                "generator_cpu_pct": result.get("generator_cpu_pct"),
                "database_cpu_pct": result.get("database_cpu_pct"),
                "other_cpu_pct": result.get("other_cpu_pct"),
                "errors": result.get("errors"),
            }
        elif scenario == "catchup":
            row = dict(record.get("summary") or {})
        elif scenario == "replay":
            row = {
                str(step["size"]): {
                    "seconds": step["total_ms"] / 1000,
                    "received": step["received"],
                    "expected": step["expected"],
                    "complete": step.get("complete"),
                }
                for step in record.get("steps") or []
            }
        else:
            continue
        rows.setdefault((scenario, label), []).append(row)
    out: Summary = {}
    for (scenario, label), repeats in rows.items():
        merged = _median(repeats)
        if scenario != "replay":
            merged["runs"] = len(repeats)
        out.setdefault(scenario, {})[label] = merged
    return out


def _livespace(rows: dict[str, dict[str, Any]], batch: bool = False) -> dict[str, Any] | None:
    for label, row in rows.items():
        if label.startswith("livespace") and label.endswith("batch=1") == batch:
            return row
    return None


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return round(a / b, 3)
    return None


def ratios(summary: Summary) -> dict[str, dict[str, float | None]]:
    """livespace / baseline for each comparable figure measured in this run."""
    out: dict[str, dict[str, float | None]] = {}
    fan = summary.get("fanout", {})
    for base in BASELINES:
        figures: dict[str, float | None] = {}
        ls, other = _livespace(fan), fan.get(base)
        if ls and other:
            figures["fanout_deliveries_per_s"] = _ratio(ls["deliveries_per_s"],
                                                        other["deliveries_per_s"])
            figures["fanout_p99_ms"] = _ratio(ls["p99_ms"], other["p99_ms"])
            figures["fanout_open_server_cpu"] = _ratio(ls["open_server_cpu_pct"],
                                                       other["open_server_cpu_pct"])
        batch = _livespace(fan, batch=True)
        if batch and other:
            figures["fanout_batch_deliveries_per_s"] = _ratio(batch["deliveries_per_s"],
                                                              other["deliveries_per_s"])
        ls_idle, base_idle = _livespace(summary.get("idle", {})), summary.get("idle", {}).get(base)
        if ls_idle and base_idle:
            figures["idle_kb_per_connection"] = _ratio(ls_idle["kb_per_connection"],
                                                       base_idle["kb_per_connection"])
        ls_conn = _livespace(summary.get("connect", {}))
        base_conn = summary.get("connect", {}).get(base)
        if ls_conn and base_conn:
            figures["handshakes_per_s"] = _ratio(ls_conn["handshakes_per_s"],
                                                 base_conn["handshakes_per_s"])
        if figures:
            out[f"livespace/{base}"] = figures
    return out


def targets(summary: Summary, ratio_table: dict[str, dict[str, float | None]]) -> list[Record]:
    """Issue 5's targets, each with the figure measured in this run and whether it is met."""
    rows: list[Record] = []

    def check(target: str, measured: Any, ok: bool | None) -> None:
        rows.append({"target": target, "measured": measured, "met": ok})

    def at_least(value: Any, bound: float) -> bool | None:
        return None if not isinstance(value, int | float) else value >= bound

    def at_most(value: Any, bound: float) -> bool | None:
        return None if not isinstance(value, int | float) else value <= bound

    ws, fa = ratio_table.get("livespace/websockets", {}), ratio_table.get("livespace/fastapi", {})
    if "fanout_deliveries_per_s" in ws:
        value = ws["fanout_deliveries_per_s"]
        check("fan-out >= 1.0x websockets.broadcast()", value, at_least(value, 1.0))
    if "fanout_deliveries_per_s" in fa:
        value = fa["fanout_deliveries_per_s"]
        check("fan-out >= 1.35x FastAPI ConnectionManager", value, at_least(value, 1.35))
    if "fanout_batch_deliveries_per_s" in ws:
        value = ws["fanout_batch_deliveries_per_s"]
        check("batch=1 events delivered/s >= 3x websockets.broadcast()", value,
              at_least(value, 3.0))
    ls = _livespace(summary.get("fanout", {}))
    if ls and ls.get("open_rate") == 50_000:
        check("p99 <= 16 ms at 50k deliveries/s", ls.get("p99_ms"), at_most(ls.get("p99_ms"), 16))
        cpu = ls.get("open_server_cpu_pct")
        check("server CPU <= 50% of a core at 50k deliveries/s", cpu, at_most(cpu, 50))
    idle = _livespace(summary.get("idle", {}))
    if idle:
        kb = idle.get("kb_per_connection")
        check(f"<= 15 KB RSS per idle connection ({idle.get('connections')} connections)", kb,
              at_most(kb, 15))
    conn = _livespace(summary.get("connect", {}))
    if conn:
        value = conn.get("handshakes_per_s")
        check(">= 2,000 authenticated handshakes/s", value, at_least(value, 2000))
    for label, row in summary.get("durable", {}).items():
        check(f"durable >= 5,000 committed events/s ({label})", row.get("events_per_s"),
              at_least(row.get("events_per_s"), 5000))
        if row.get("open_rate") == 5000:
            p99 = row.get("open_p99_ms")
            complete = (row.get("open_acked_pct") or 0) >= 99.9
            check(f"durable ack p99 <= 50 ms at 5,000 writes/s ({label})", p99,
                  None if p99 is None else complete and p99 <= 50)
    for label, row in summary.get("replay", {}).items():
        step = row.get("100000")
        if step:
            ok = bool(step["complete"]) and step["seconds"] <= 2.0
            check(f"replay of 100,000 missed events <= 2 s ({label})", step["seconds"], ok)
    return rows


def _fmt(value: Any, digits: int = 0, suffix: str = "") -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def _grid(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    """A text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return f"  {first}  {rest}"

    return ["", title, line(headers), *(line(r) for r in rows)]


def _pair(a: Any, b: Any) -> str:
    return f"{_fmt(a, 0, '%')}/{_fmt(b, 0, '%')}"


def table(summary: Summary, ratio_table: dict[str, dict[str, float | None]],
          goals: list[Record]) -> str:
    """The results as plain text for the terminal (CPU: % of one core, closed/open loop)."""
    lines: list[str] = []
    if fan := summary.get("fanout"):
        lines += _grid("fan-out", [
            "server", "deliveries/s", "open rate/s", "p50 ms", "p99 ms", "max ms", "delivered",
            "server CPU", "generator CPU", "other CPU"], [[
                label, _fmt(r["deliveries_per_s"]), _fmt(r["open_rate"]), _fmt(r["p50_ms"], 1),
                _fmt(r["p99_ms"], 1), _fmt(r["max_ms"], 1), _fmt(r["delivered_pct"], 2, "%"),
                _pair(r["closed_server_cpu_pct"], r["open_server_cpu_pct"]),
                _pair(r["closed_generator_cpu_pct"], r["open_generator_cpu_pct"]),
                _pair(r["closed_other_cpu_pct"], r["open_other_cpu_pct"]),
            ] for label, r in fan.items()])
    if idle := summary.get("idle"):
        lines += _grid("idle", ["server", "connections", "KiB/connection", "RSS before MiB",
                                "RSS after MiB"], [[
            label, _fmt(r["connections"]), _fmt(r["kb_per_connection"], 1),
            _fmt((r.get("rss_kb_before") or 0) / 1024, 1),
            _fmt((r.get("rss_kb_after") or 0) / 1024, 1),
        ] for label, r in idle.items()])
    if conn := summary.get("connect"):
        lines += _grid("connect", ["server", "handshakes/s", "p99 ms", "server CPU",
                                   "generator CPU", "other CPU"], [[
            label, _fmt(r["handshakes_per_s"]), _fmt(r["p99_ms"], 1),
            _fmt(r["server_cpu_pct"], 0, "%"), _fmt(r["generator_cpu_pct"], 0, "%"),
            _fmt(r.get("other_cpu_pct"), 0, "%"),
        ] for label, r in conn.items()])
    if dur := summary.get("durable"):
        lines += _grid("durable (closed loop: max events/s; open loop: ack latency at a fixed "
                       "rate)", ["server", "events/s", "open rate/s", "acked", "ack p50 ms",
                                 "ack p99 ms", "server CPU", "generator CPU", "PostgreSQL CPU",
                                 "other CPU", "errors"], [[
            label, _fmt(r["events_per_s"]), _fmt(r.get("open_rate")),
            _fmt(r.get("open_acked_pct"), 1, "%"), _fmt(r.get("open_p50_ms"), 1),
            _fmt(r.get("open_p99_ms"), 1),
            _fmt(r["server_cpu_pct"], 0, "%"), _fmt(r.get("generator_cpu_pct"), 0, "%"),
            _fmt(r.get("database_cpu_pct"), 0, "%"),
            _fmt(r.get("other_cpu_pct"), 0, "%"), str(r.get("errors") or ""),
        ] for label, r in dur.items()])
    if rep := summary.get("replay"):
        lines += _grid("replay (since=0)", ["server", "events", "seconds", "received"], [[
            label, f"{int(size):,}", _fmt(step["seconds"], 2),
            f"{step['received']:,}/{step['expected']:,}",
        ] for label, steps in rep.items() for size, step in steps.items()])
    for pair, figures in ratio_table.items():
        shown = ", ".join(f"{k} {v:.2f}x" for k, v in figures.items() if v is not None)
        lines.append(f"\n{pair}: {shown}")
    if goals:
        lines += ["", "targets (issue 5)"]
        for goal in goals:
            mark = {True: "met ", False: "MISS", None: "n/a "}[goal["met"]]
            measured = goal["measured"]
            shown = f"{measured:,.2f}" if isinstance(measured, int | float) else str(measured)
            lines.append(f"  [{mark}] {goal['target']}: {shown}")
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def write_chart(path: Path, summary: Summary) -> None:
    """A PNG: fan-out throughput and latency, idle memory, handshakes, durable, replay."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    fig.suptitle("livespace bench (server on one core)")

    def bars(ax: Any, title: str, values: dict[str, Any], unit: str) -> None:
        ax.set_title(title)
        shown = {k: v for k, v in values.items() if isinstance(v, int | float)}
        if not shown:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            return
        names = list(shown)
        drawn = ax.bar(range(len(names)), list(shown.values()), color="tab:blue")
        top = max(shown.values())
        fmt = "{:,.0f}" if top >= 100 else "{:,.1f}" if top >= 10 else "{:,.2f}"
        ax.bar_label(drawn, fmt=fmt, fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(unit)

    fan = summary.get("fanout", {})
    bars(axes[0][0], "fan-out, closed loop", {k: r["deliveries_per_s"] for k, r in fan.items()},
         "deliveries/s")
    ax = axes[0][1]
    rate = next((r["open_rate"] for r in fan.values() if r.get("open_rate")), None)
    ax.set_title(f"fan-out latency, open loop at {rate or 0:,.0f} deliveries/s")
    names = [k for k, r in fan.items() if r.get("p50_ms") is not None]
    if names:
        width = 0.2
        for offset, key in enumerate(("p50_ms", "p90_ms", "p99_ms", "max_ms")):
            ax.bar([i + (offset - 1.5) * width for i in range(len(names))],
                   [fan[n].get(key) or 0 for n in names], width, label=key[:-3])
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("ms")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.legend(fontsize=8)
    else:
        bars(ax, ax.get_title(), {}, "ms")
    bars(axes[0][2], "RSS per idle connection",
         {k: r["kb_per_connection"] for k, r in summary.get("idle", {}).items()}, "KiB")
    bars(axes[1][0], "authenticated handshakes",
         {k: r["handshakes_per_s"] for k, r in summary.get("connect", {}).items()},
         "handshakes/s")
    bars(axes[1][1], "durable writes (acked)",
         {k: r["events_per_s"] for k, r in summary.get("durable", {}).items()}, "events/s")
    bars(axes[1][2], "replay after since=0",
         {f"{k} {int(size):,}": step["seconds"]
          for k, steps in summary.get("replay", {}).items() for size, step in steps.items()},
         "seconds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
