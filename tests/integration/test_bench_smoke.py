"""Smoke runs of ``livespace bench`` with tiny numbers against real servers.

The benchmark is the development tool in ``bench/`` (not in the wheel); these run it
through the ``livespace bench`` command, as a source checkout does.

Not a timed assertion: they check that the scenarios run end to end through the public
contract and write a sane result file. They use the pure-Python load generator, so Node
is not needed for ``make test``; ``--no-pin`` keeps the test process off ``sched_setaffinity``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from livespace.cli import main as livespace

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # starts processes itself

COMMON = ["--generator", "python", "--no-pin"]


def run_bench(tmp_path: Path, *argv: str) -> dict[str, Any]:
    status = livespace(["bench", *argv, *COMMON, "--output-dir", str(tmp_path)])
    files = sorted(tmp_path.glob("*.json"))
    assert files, "no result file written"
    document: dict[str, Any] = json.loads(files[-1].read_text())
    assert status == 0, document["errors"]
    return document


def test_fanout_against_livespace_and_a_baseline(tmp_path: Path) -> None:
    doc = run_bench(
        tmp_path, "fanout", "--servers", "livespace,websockets", "--subscribers", "5",
        "--closed-seconds", "1", "--open-seconds", "1", "--rate", "250",
    )
    assert [run["server"] for run in doc["runs"]] == ["livespace", "websockets"]
    for run in doc["runs"]:
        result = run["result"]
        assert result["connected"] == 5
        assert result["closed"]["delivered"] > 0
        assert result["closed"]["deliveries_per_s"] > 0
        assert result["open"]["delivered"] > 0
        assert 0 < result["open"]["delivered_pct"] <= 100
        assert result["open"]["latency"]["p99_ms"] >= result["open"]["latency"]["p50_ms"] > 0
        assert result["open"]["server_cpu_pct"] >= 0
        assert result["open"]["server_rss_kb"] > 0
        assert "generator_cpu_pct" in result["closed"]
    ratio = doc["ratios"]["livespace/websockets"]["fanout_deliveries_per_s"]
    assert ratio is not None and ratio > 0
    assert doc["machine"]["cores"] >= 1
    chart = sorted(tmp_path.glob("*.json"))[-1].with_suffix(".png")
    assert chart.stat().st_size > 1000


def test_durable_and_replay(tmp_path: Path) -> None:
    doc = run_bench(
        tmp_path, "durable", "--database", "sqlite", "--writers", "2", "--pipeline", "4",
        "--durable-seconds", "1", "--durable-rate", "200", "--durable-open-seconds", "1",
        "--no-chart",
    )
    result = doc["runs"][0]["result"]
    assert result["acks"] > 0 and result["events_per_s"] > 0
    assert result["latency"]["p99_ms"] > 0
    assert result["open"]["acks"] > 0 and result["open"]["latency"]["p99_ms"] > 0
    assert result["max_seq"] >= result["acks"] + result["open"]["acks"]
    assert doc["summary"]["durable"]["livespace (sqlite)"]["open_rate"] == 200

    doc = run_bench(tmp_path, "replay", "--replay-sizes", "20,60", "--writers", "2", "--no-chart")
    steps = doc["runs"][0]["steps"]
    assert [step["size"] for step in steps] == [20, 60]
    for step in steps:
        assert step["complete"], step
        assert step["received"] == step["expected"] >= step["size"]


def test_catchup_full_vs_compacted(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "catchup", "--database", "sqlite", "--catchup-events", "3000",
                    "--catchup-runs", "1", "--no-chart")
    (run,) = doc["runs"]
    summary = run["summary"]
    assert summary["full_bytes"] > summary["compacted_bytes"] > 0
    assert [r["frames"] for r in run["runs"]["full"]] == [3000]
    assert [r["frames"] for r in run["runs"]["compacted"]] == [1000]
    assert run["runs"]["full"][0]["versions"] == run["runs"]["compacted"][0]["versions"]
    assert summary["import_1000_ms"] > 0
