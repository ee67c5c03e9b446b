"""The benchmark: load generator, scenarios and report (see docs/performance.md).

A development tool, not part of the wheel: ``python -m bench ...`` or, from this source
checkout, ``livespace bench ...``.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run ``livespace bench`` with ``argv`` (without the ``bench`` word); the exit status."""
    from bench.cli import main as run

    return run(argv)


__all__ = ["main"]
