"""Who is in a note and where their cursor is: the awareness states of one document (pure).

The y-protocols rules: each client (a Yjs ``clientID``) has a ``clock``; a state with a
higher clock replaces the one held, a ``null`` state with the same or a higher clock
removes it. On top of them, livespace's own:

- a state belongs to the connection that first set it: another local connection cannot
  change or remove it (no one erases or fakes someone else's cursor); a connection sets
  at most :data:`MAX_CLIENTS_PER_CONNECTION` clients;
- the server writes the authenticated user into every state a connection sets
  (:func:`stamp`): ``user.id`` and ``user.name`` come from the token, whatever the
  client claimed; ``user.color`` is the client's if it is a short string;
- when a connection closes, its states are removed (:meth:`AwarenessTable.drop`) and
  every other client is told;
- states relayed from other nodes are kept too (owner ``node:<id>``), so a query is
  answered locally; one not renewed for :data:`REMOTE_TTL_S` is no longer reported
  (clients renew theirs every 15 s), and at most :data:`MAX_STATES` are held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from livespace.notes.ywire import AwarenessEntry

MAX_CLIENTS_PER_CONNECTION = 4
MAX_STATES = 1024
REMOTE_TTL_S = 30.0
MAX_COLOR = 32
REMOTE = "node:"


@dataclass(slots=True)
class _Held:
    clock: int
    state: str | None
    owner: str
    seen: float


def stamp(state: str, user_id: str, name: str | None) -> str:
    """``state`` (JSON text of an object) with ``user.id`` and ``user.name`` from the
    token, and ``user.color`` kept only when it is a string of at most 32 characters."""
    obj: dict[str, Any] = orjson.loads(state)
    claimed = obj.get("user")
    user: dict[str, Any] = {"id": user_id, "name": name or user_id}
    if isinstance(claimed, dict):
        color = claimed.get("color")
        if isinstance(color, str) and len(color) <= MAX_COLOR:
            user["color"] = color
    obj["user"] = user
    return orjson.dumps(obj).decode()


class AwarenessTable:
    """The awareness states of one note on this node."""

    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    def apply(self, entries: tuple[AwarenessEntry, ...] | list[AwarenessEntry], owner: str,
              now: float) -> list[AwarenessEntry]:
        """Take what ``owner`` (a connection id, or ``node:<id>``) sent; return the
        entries that changed something, to relay to everyone else."""
        changed: list[AwarenessEntry] = []
        remote = owner.startswith(REMOTE)
        for entry in entries:
            held = self._held.get(entry.client_id)
            if held is None:
                if entry.state is None:
                    continue  # removing what is not there
                if not remote and self.owned(owner) >= MAX_CLIENTS_PER_CONNECTION:
                    continue
                if len(self._held) >= MAX_STATES:
                    self._evict()
            elif not remote and held.owner != owner and not held.owner.startswith(REMOTE):
                continue  # another local connection's client
            elif not (entry.clock > held.clock
                      or (entry.clock == held.clock and entry.state is None)):
                continue  # stale
            if entry.state is None:
                self._held.pop(entry.client_id, None)
            else:
                self._held[entry.client_id] = _Held(entry.clock, entry.state, owner, now)
            changed.append(entry)
        return changed

    def owned(self, owner: str) -> int:
        return sum(1 for held in self._held.values() if held.owner == owner)

    def states(self, now: float) -> list[AwarenessEntry]:
        """Every state worth reporting: local ones, and remote ones renewed recently."""
        return [
            AwarenessEntry(client_id, held.clock, held.state)
            for client_id, held in self._held.items()
            if not held.owner.startswith(REMOTE) or now - held.seen <= REMOTE_TTL_S
        ]

    def local_states(self) -> list[AwarenessEntry]:
        """The states of this node's connections (another node asked for them)."""
        return [AwarenessEntry(client_id, held.clock, held.state)
                for client_id, held in self._held.items() if not held.owner.startswith(REMOTE)]

    def drop(self, owner: str) -> list[AwarenessEntry]:
        """Remove ``owner``'s states; the removals to tell everyone (clock + 1, null)."""
        gone = [cid for cid, held in self._held.items() if held.owner == owner]
        out = []
        for client_id in gone:
            held = self._held.pop(client_id)
            out.append(AwarenessEntry(client_id, held.clock + 1, None))
        return out

    def _evict(self) -> None:
        """Make room: the remote state renewed least recently goes (local ones stay)."""
        remote = [(held.seen, cid) for cid, held in self._held.items()
                  if held.owner.startswith(REMOTE)]
        if remote:
            del self._held[min(remote)[1]]
        else:  # only local states: the oldest
            del self._held[min((held.seen, cid) for cid, held in self._held.items())[1]]
