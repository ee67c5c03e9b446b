"""A client's copy of a workspace, kept from a snapshot and events (pure: no I/O).

:class:`Replica` holds the contacts (by id), the online users (by id) and the position
``(epoch, seq)``. Durable events are applied once each, in ``seq`` order (an event at
or below ``seq`` is a duplicate: ignored); contact events are upserts by ``version``
(one that is not above what is held changes nothing), so a snapshot made of pages read
at different seqs, a replay that overlaps it, or a compacted replay all converge.
"""

from __future__ import annotations

import random
from typing import Any

from livespace.commands import CONTACT_EVENTS


class Replica:
    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self.presence: dict[str, dict[str, Any]] = {}
        self.epoch: str | None = None
        self.seq = 0
        # the highest version seen of every contact, deleted ones too: an older event
        # replayed after a delete must not bring the contact back
        self._versions: dict[str, int] = {}

    # ---- the snapshot -------------------------------------------------------------------

    def load(self, contacts: list[dict[str, Any]], seq: int, epoch: str) -> None:
        """Replace everything with a list read at ``seq`` (the lowest seq of its pages)."""
        self.contacts = {c["id"]: c for c in contacts if not c.get("deleted")}
        self._versions = {c["id"]: int(c.get("version", 0)) for c in contacts}
        self.seq, self.epoch = seq, epoch

    # ---- events -------------------------------------------------------------------------

    def apply(self, event: dict[str, Any]) -> bool:
        """Apply a durable event; False when it is a duplicate (at or below ``seq``)."""
        seq = event.get("seq")
        if not isinstance(seq, int) or seq <= self.seq:
            return False
        self.seq = seq
        if event["type"] in CONTACT_EVENTS:
            self._upsert(event["type"], event["data"])
        return True

    def _upsert(self, kind: str, contact: dict[str, Any]) -> None:
        cid, version = contact["id"], int(contact.get("version", 0))
        if version <= self._versions.get(cid, 0):
            return
        self._versions[cid] = version
        if kind == "contact_deleted" or contact.get("deleted"):
            self.contacts.pop(cid, None)
        else:
            self.contacts[cid] = {k: v for k, v in contact.items() if k != "changed"}

    def caught_up(self, seq: int) -> None:
        """A replay that ended at ``seq`` (a compacted one skips seqs)."""
        self.seq = max(self.seq, seq)

    # ---- presence -----------------------------------------------------------------------

    def welcome(self, frame: dict[str, Any]) -> None:
        self.presence = {u["id"]: u for u in frame.get("presence", [])}

    def on_presence(self, frame: dict[str, Any]) -> None:
        """``join``/``update``/``leave`` of one user, or a coalesced ``diff``."""
        kind = frame.get("event")
        if kind == "diff":
            for user in [*frame.get("joins", []), *frame.get("updates", [])]:
                self.presence[user["id"]] = user
            for user in frame.get("leaves", []):
                self.presence.pop(user["id"], None)
        elif kind == "leave":
            self.presence.pop(frame["user"]["id"], None)
        elif kind in ("join", "update"):
            self.presence[frame["user"]["id"]] = frame["user"]


def backoff(attempt: int, *, low: float = 0.25, high: float = 10.0,
            rng: random.Random | None = None) -> float:
    """Seconds before reconnect attempt ``attempt`` (0, 1, ...): exponential from
    ``low`` up to ``high``, with full jitter over its upper half (so a node's clients do
    not all come back in the same instant)."""
    cap: float = min(high, low * 2.0 ** min(attempt, 30))
    return cap / 2 + (rng or random).random() * cap / 2
