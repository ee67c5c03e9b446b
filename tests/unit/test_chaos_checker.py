"""The chaos checker (bench/chaos/checker.py) on histories made by hand: a clean one
passes; each kind of anomaly a buggy server could produce is reported."""

from __future__ import annotations

from bench.chaos.checker import Logged, Reader, Segment, Write, check


def log_of(*names: str) -> list[Logged]:
    return [Logged(i + 1, f"e{i + 1}", name) for i, name in enumerate(names)]


def clean() -> tuple[list[Logged], list[Write], list[Reader]]:
    log = log_of("w-0", "w-1", "w-2", "w-3")
    writes = [Write("r0", "w-0", 1), Write("r1", "w-1", 2, ["unavailable"]),
              Write("r2", "w-2", 3, ["no answer"]), Write("r3", "w-3", 4)]
    reader = Reader("reader", [Segment(0, log[:2]), Segment(2, log[2:])])
    return log, writes, [reader]


def test_a_clean_history_passes() -> None:
    log, writes, readers = clean()
    assert check(log, writes, readers, {"a": {"reader"}, "b": {"reader"}}, {"reader"}) == []


def test_a_lost_acknowledged_write_is_reported() -> None:
    log, writes, readers = clean()
    writes.append(Write("r4", "w-4", 5))  # acked at 5, never in the log
    problems = check(log, writes, readers)
    assert "acknowledged write w-4 (ref r4) is not at its acked seq 5: the log has nothing " \
        "there" in problems
    assert "acknowledged write w-4 is in the log 0 times" in problems


def test_an_ack_at_the_wrong_seq_is_reported() -> None:
    log, writes, readers = clean()
    writes[0].acked_seq = 2
    assert any("not at its acked seq 2" in p for p in check(log, writes, readers))


def test_a_retried_write_applied_twice_is_reported() -> None:
    log = log_of("w-0", "w-1", "w-1")
    writes = [Write("r0", "w-0", 1), Write("r1", "w-1", 2, ["unavailable"])]
    problems = check(log, writes, [])
    assert "write w-1 is in the log 2 times" in problems
    assert "acknowledged write w-1 is in the log 2 times" in problems


def test_an_unacknowledged_write_applied_twice_is_reported() -> None:
    log = log_of("w-0", "w-0")
    assert "unacknowledged write w-0 is in the log 2 times" in check(
        log, [Write("r0", "w-0", None, ["no answer"])], [])


def test_a_gap_in_the_log_is_reported() -> None:
    log = [Logged(1, "e1", "w-0"), Logged(3, "e3", "w-1")]
    assert any("not 1..2" in p for p in check(log, [], []))


def test_a_reader_gap_repeat_or_reorder_is_reported() -> None:
    log, writes, _ = clean()
    for seen in ([log[0], log[2]], [log[0], log[0]], [log[1], log[0]]):
        problems = check(log, writes, [Reader("r", [Segment(0, seen)])])
        assert len(problems) == 1 and "reader r, connection 1" in problems[0], seen


def test_a_resume_that_skips_or_repeats_is_reported() -> None:
    log, writes, _ = clean()
    skipped = Reader("r", [Segment(0, log[:1]), Segment(2, log[2:])])
    assert any("resumed with since=2, had seen 1" in p for p in check(log, writes, [skipped]))


def test_a_phantom_or_altered_event_is_reported() -> None:
    log, writes, _ = clean()
    phantom = Reader("r", [Segment(0, [log[0], Logged(2, "e2", "ghost-write")])])
    assert any("the log has" in p for p in check(log, writes, [phantom]))
    beyond = Reader("r", [Segment(0, [*log, Logged(5, "e5", "w-9")])])
    assert any("seq 5" in p for p in check(log, writes, [beyond]))


def test_resync_required_is_reported() -> None:
    log, writes, _ = clean()
    told = Reader("r", [Segment(0, log), Segment(4, [], resync=True)])
    assert any("resync_required" in p for p in check(log, writes, [told]))


def test_presence_ghosts_and_missing_users_are_reported() -> None:
    log, writes, readers = clean()
    problems = check(log, writes, readers, {"a": {"reader", "lurker0"}, "b": set()},
                     {"reader"})
    assert problems == ["node a shows ghosts: ['lurker0']",
                        "node b misses connected users: ['reader']"]
