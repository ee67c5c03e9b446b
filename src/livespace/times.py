"""Instants as livespace writes them: UTC, ISO-8601, milliseconds, ``Z``.

One form everywhere (rows, frames, logs of the store): text in it sorts as time, so the
store compares instants as strings in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def iso(moment: datetime) -> str:
    """``moment`` in the stored form (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso_ago(age: timedelta) -> str:
    """The instant ``age`` before now, in the stored form."""
    return iso(datetime.now(UTC) - age)


def normalised(instant: str) -> str:
    """Any ISO-8601 instant (``Z``, ``+00:00``, no fraction...) in the stored form."""
    return iso(datetime.fromisoformat(instant))
