"""``/metrics`` (prometheus-client): counters are node-lifetime totals that never go down
when sockets close, and commit, fan-out and replay latencies are histograms."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Server
from livespace.client import Client

pytestmark = pytest.mark.integration


async def scrape(server: Server) -> dict[str, float]:
    async with server.api("metrics") as api:
        text = (await api.get("/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


async def test_counters_only_go_up_and_latencies_are_histograms(
    server: Server, clients: list[Client]
) -> None:
    ws = await server.workspace("alice", "bob")
    before = await scrape(server)
    alice = await server.connect(ws, "alice")
    bob = await server.connect(ws, "bob")
    clients += [alice, bob]
    for i in range(5):
        assert (await alice.request("contact_created", {"name": f"C{i}"}))["type"] == "ack"
    await bob.events(5)
    during = await scrape(server)
    assert during["livespace_connections"] >= 2
    assert during["livespace_messages_in_total"] >= before.get(
        "livespace_messages_in_total", 0) + 5
    await alice.close()
    await bob.close()
    resumed = await server.connect(ws, "bob", since=0)
    clients.append(resumed)
    await resumed.events(5)
    await resumed.close()
    after = await scrape(server)
    for name in ("livespace_messages_in_total", "livespace_messages_out_total",
                 "livespace_connections_opened_total"):
        assert after[name] >= during[name], name  # closing sockets never lowers a total
    assert after["livespace_connections_opened_total"] >= before.get(
        "livespace_connections_opened_total", 0) + 3
    assert after["livespace_mutations_total{outcome=ack}"] >= 5
    assert after["livespace_commit_seconds_count"] >= before.get(
        "livespace_commit_seconds_count", 0) + 5
    assert after["livespace_fanout_seconds_count"] >= before.get(
        "livespace_fanout_seconds_count", 0) + 5
    assert after["livespace_replay_seconds_count"] >= 1
    assert after["livespace_replayed_events_total"] >= 5
    assert sum(v for k, v in after.items()
               if k.startswith("livespace_connections_closed_total")) >= 3
