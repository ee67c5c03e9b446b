"""The benchmark: load generator, scenarios and report (see docs/performance.md).

A development tool, not part of the wheel: ``python -m bench ...`` or, from this source
checkout, ``livespace bench ...``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``livespace bench`` with ``argv`` (without the ``bench`` word); the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["chaos"]:  # fault injection with a history checker (bench/chaos)
        from bench.chaos.run import main as chaos

        return chaos(args[1:])
    if args[:1] == ["soak"]:  # memory and fds under churn (bench/soak.py)
        from bench.soak import main as soak

        return soak(args[1:])
    if args[:1] == ["notes"]:  # collaborative notes (bench/notes.py)
        from bench.notes import main as notes

        return notes(args[1:])
    from bench.cli import main as run

    return run(args)


__all__ = ["main"]
