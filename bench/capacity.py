"""The capacity model of docs/scaling.md: what 1M connections in 100,000 workspaces take.

``python -m bench.capacity`` prints the model with the figures measured on this
project's machine kind (docs/performance.md, medians; change them with the options) and
a small simulation of where a workspace's sockets land when the load balancer is not
sticky (how many nodes each message reaches). Every input is a measured figure or a
stated assumption about the workload; nothing here is a promise.
"""

from __future__ import annotations

import argparse
import math
import random


def distinct_nodes(connections: int, nodes: int, trials: int = 20_000, seed: int = 1) -> float:
    """Mean number of distinct nodes a workspace's ``connections`` land on (uniform, no
    stickiness): each message published for the workspace reaches that many nodes."""
    rng = random.Random(seed)
    total = 0
    for _ in range(trials):
        total += len({rng.randrange(nodes) for _ in range(connections)})
    return total / trials


def model(a: argparse.Namespace) -> list[tuple[str, str]]:
    per_ws = a.connections / a.workspaces
    nodes = math.ceil(a.connections / a.per_node)
    spread = distinct_nodes(round(per_ws), nodes)
    rooms_per_node = a.workspaces * spread / nodes
    events_s = a.workspaces * a.events_per_ws_min / 60
    ephemeral_s = a.connections * a.ephemeral_per_conn_min / 60
    deliveries_s = (events_s + ephemeral_s) * per_ws
    pings_s = a.connections / a.heartbeat_s
    # CPU of one node (percent of its core)
    idle_cpu = a.idle_cpu_pct_per_10k * a.per_node / 10_000
    fanout_cpu = 100 * deliveries_s / nodes / a.deliveries_per_core
    storm_s = a.per_node / a.handshakes_per_core
    # PostgreSQL
    pg_event_cores = events_s / a.pg_events_per_core
    head_query_s = a.head_check_ms_per_10k / 1000 * rooms_per_node / 10_000
    head_cores = nodes * head_query_s / a.head_check_s
    session_rows_s = a.connections / a.session_flush_s  # every pinging socket is dirty
    redis_in = events_s + ephemeral_s
    redis_out = redis_in * spread
    rows = [
        ("workload", f"{a.connections:,} connections in {a.workspaces:,} workspaces "
         f"({per_ws:.0f} each); {a.events_per_ws_min} durable events per workspace per "
         f"minute = {events_s:,.0f}/s; {a.ephemeral_per_conn_min} ephemeral frames "
         f"(typing, presence, cursors) per connection per minute = {ephemeral_s:,.0f}/s"),
        ("nodes", f"{nodes} processes of {a.per_node:,} connections (one core each; "
         f"{a.per_node * a.kib_per_conn / 1024 / 1024:.2f} GiB of sockets each at "
         f"{a.kib_per_conn} KiB per idle connection; {math.ceil(nodes / a.cores_per_host)} "
         "host(s) "
         f"of {a.cores_per_host} cores)"),
        ("spread", f"without sticky routing a workspace's {per_ws:.0f} sockets land on "
         f"{spread:.1f} of {nodes} nodes (simulated): each node holds {rooms_per_node:,.0f} "
         "rooms, each message reaches that many nodes"),
        ("node CPU, idle", f"{idle_cpu:.1f}% ({pings_s / nodes:,.0f} pings/s and their "
         "pongs; the heartbeat sweep)"),
        ("node CPU, fan-out", f"{fanout_cpu:.1f}% ({deliveries_s / nodes:,.0f} deliveries/s "
         f"of {deliveries_s:,.0f} cluster-wide, at {a.deliveries_per_core:,} per core)"),
        ("reconnect storm", f"a node's {a.per_node:,} clients reconnect elsewhere in "
         f"{storm_s:.0f} s at {a.handshakes_per_core:,} handshakes/s per core "
         f"({storm_s * nodes / (nodes - 1):.0f} s spread over the other {nodes - 1})"),
        ("Redis", f"{redis_in:,.0f} SPUBLISH/s keyed by workspace (one shard each), "
         f"{redis_out:,.0f} deliveries/s to nodes; {a.workspaces * spread:,.0f} channel "
         f"subscriptions; at {a.redis_deliveries_per_shard:,} deliveries/s per shard core: "
         f"{math.ceil(redis_out / a.redis_deliveries_per_shard)} shards"),
        ("PostgreSQL, writes", f"{events_s:,.0f} events/s: {pg_event_cores:.1f} cores at "
         f"{a.pg_events_per_core:,} events/s per PostgreSQL core (group commit)"),
        ("PostgreSQL, head check", f"{nodes} nodes x 1 query per {a.head_check_s} s over "
         f"{rooms_per_node:,.0f} rooms each ({head_query_s * 1000:.0f} ms): "
         f"{head_cores:.2f} cores"),
        ("PostgreSQL, session rows", f"{session_rows_s:,.0f} upserts/s if every pinging "
         f"socket's counters are flushed every {a.session_flush_s:.0f} s (in "
         f"{nodes / a.session_flush_s:.0f} transactions/s)"),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    add = p.add_argument
    add("--connections", type=int, default=1_000_000)
    add("--workspaces", type=int, default=100_000)
    add("--per-node", type=int, default=50_000, help="connections per process")
    add("--cores-per-host", type=int, default=16)
    add("--events-per-ws-min", type=float, default=2.0)
    add("--ephemeral-per-conn-min", type=float, default=1.0)
    add("--heartbeat-s", type=float, default=25.0)
    add("--session-flush-s", type=float, default=5.0)
    add("--head-check-s", type=float, default=1.5)
    # measured (docs/performance.md, this machine kind)
    add("--kib-per-conn", type=float, default=11.0)
    add("--idle-cpu-pct-per-10k", type=float, default=10.5)
    add("--deliveries-per-core", type=int, default=590_000)
    add("--handshakes-per-core", type=int, default=1_538)
    add("--pg-events-per-core", type=int, default=4_000)
    add("--head-check-ms-per-10k", type=float, default=33.5)
    add("--redis-deliveries-per-shard", type=int, default=1_100_000)
    args = p.parse_args(argv)
    for name, text in model(args):
        print(f"{name:>26}: {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
