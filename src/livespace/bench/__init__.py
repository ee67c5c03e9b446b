"""``livespace bench``: load generator, scenarios and report (see docs/performance.md)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run ``livespace bench`` with ``argv`` (without the ``bench`` word); the exit status."""
    from livespace.bench.cli import main as run

    return run(argv)


__all__ = ["main"]
