"""Records the store hands out, and the :class:`Store` contract every engine keeps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from livespace.commands import Mutation


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a user id and the display name from their token."""

    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Workspace:
    id: str
    name: str
    created_at: str
    head_seq: int = 0
    role: str | None = None  # the asking user's role, where a query knows it

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "head_seq": self.head_seq,
        }
        if self.role is not None:
            out["role"] = self.role
        return out


@dataclass(frozen=True, slots=True)
class Member:
    workspace_id: str
    user_id: str
    role: str
    added_at: str

    def to_json(self) -> dict[str, Any]:
        return {"workspace_id": self.workspace_id, "user_id": self.user_id,
                "role": self.role, "added_at": self.added_at}


@dataclass(frozen=True, slots=True)
class Event:
    """One durable event of a workspace's log."""

    workspace_id: str
    seq: int
    event_id: str
    type: str
    actor: Actor
    ts: str
    data: dict[str, Any]

    def frame(self) -> dict[str, Any]:
        """The event as the client sees it (DESIGN.md section 3)."""
        return {
            "type": self.type,
            "seq": self.seq,
            "event_id": self.event_id,
            "workspace_id": self.workspace_id,
            "actor": {"id": self.actor.id, "name": self.actor.name},
            "ts": self.ts,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Position:
    """Where a workspace's log stands, read at one instant: the ``epoch`` that names this
    incarnation of the log, the ``head`` seq and the ``oldest`` seq still kept
    (``head + 1`` when none is)."""

    epoch: str
    head: int
    oldest: int


@dataclass(frozen=True, slots=True)
class Listing:
    """Rows read in one snapshot with the log position they reflect: every event up to
    ``seq`` and none after (DESIGN.md section 4, snapshot then live)."""

    items: list[dict[str, Any]]
    seq: int
    epoch: str


@dataclass(frozen=True, slots=True)
class Committed:
    """The outcome of :meth:`Store.apply`.

    ``event`` is None when the mutation was an idempotent retry: ``seq`` and ``entity``
    are then those of the first application.
    """

    seq: int
    entity: dict[str, Any]
    event: Event | None


@dataclass(frozen=True, slots=True)
class NoteDoc:
    """A note and its stored shared document (docs/collaboration.md): the snapshot
    (None before the first compaction) and the updates appended since, ``(id, bytes)``
    in id order."""

    note: dict[str, Any]
    snapshot: bytes | None
    snapshot_version: int
    updates: list[tuple[int, bytes]]


@dataclass(slots=True)
class SessionRow:
    """One connection's analytics record."""

    id: str
    workspace_id: str
    user_id: str
    node: str
    connected_at: str
    disconnected_at: str | None = None
    messages_in: int = 0
    messages_out: int = 0
    events_delivered: int = 0
    events_acked: int = 0
    close_code: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Every field but ``extra``, as the sessions API shows a session."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}


class Store(Protocol):
    """Durable state of every workspace.

    Contract (checked by ``tests/integration/test_store_contract.py`` on every engine):

    - :meth:`apply` is atomic: the idempotency check on ``ref``, the change to the contact
      or note, the next ``seq`` of the workspace (1, 2, 3, ... no gaps, even under
      concurrent writers on several processes) and the event row are committed together
      or not at all. Concurrent mutations of one workspace may share a transaction (group
      commit), applied in the order they were submitted as if one after the other: one
      that fails with a :class:`~livespace.codes.Problem` takes no seq and does not
      disturb the others; an unexpected error fails every mutation of its transaction.
    - :meth:`submit` queues a mutation without awaiting it: mutations submitted in turn
      get their seqs in that order.
    - ``on_commit`` (optional, None by default): awaited after each commit with its
      events in seq order, before the callers of those mutations get their results, so
      one store publishes a workspace's events in seq order. Its errors are logged.
    - A ``ref`` already applied by the same user in the same workspace within
      ``ref_ttl_s`` returns the first :class:`Committed` again with ``event=None`` (also
      when the first is earlier in the same transaction).
    - :meth:`events_after` returns events in ``seq`` order, ``seq > since``, at most
      ``limit``; after :meth:`delete_events_before`, :meth:`oldest_seq` tells the first
      seq still kept.
    - Problems a client caused raise :class:`livespace.codes.Problem` (not_found,
      conflict, validation_failed); anything else is a bug or an outage.
    """

    on_commit: Callable[[list[Event]], Awaitable[None]] | None

    async def migrate(self) -> list[str]: ...
    async def close(self) -> None:
        """Commit what is queued, then release the connections."""
    async def ping(self) -> bool: ...

    # workspaces and members
    async def create_workspace(self, name: str, owner_id: str) -> Workspace: ...
    async def get_workspace(self, workspace_id: str) -> Workspace | None: ...
    async def delete_workspace(self, workspace_id: str) -> bool: ...
    async def workspaces_of(self, user_id: str) -> list[Workspace]: ...
    async def role_of(self, workspace_id: str, user_id: str) -> str | None: ...
    async def set_member(self, workspace_id: str, user_id: str, role: str) -> Member: ...
    async def remove_member(self, workspace_id: str, user_id: str) -> bool: ...
    async def members(self, workspace_id: str) -> list[Member]: ...
    async def roles(self, workspace_id: str, limit: int) -> dict[str, str] | None:
        """Every member's role by user id; None when there are more than ``limit``."""
        ...

    # contacts and notes
    async def apply(
        self, workspace_id: str, actor: Actor, mutation: Mutation, ref: str | None
    ) -> Committed: ...
    def submit(
        self, workspace_id: str, actor: Actor, mutation: Mutation, ref: str | None
    ) -> asyncio.Future[Committed]:
        """:meth:`apply` as a future, queued at once (call it from the event loop)."""
    async def get_contact(
        self, workspace_id: str, contact_id: str, *, include_deleted: bool = False
    ) -> dict[str, Any] | None: ...
    async def contacts(
        self, workspace_id: str, *, after: str | None, limit: int, include_deleted: bool = False
    ) -> list[dict[str, Any]]: ...
    async def notes(self, workspace_id: str, contact_id: str) -> list[dict[str, Any]]: ...
    async def contact_list(
        self, workspace_id: str, *, after: str | None, limit: int, include_deleted: bool = False
    ) -> Listing | None:
        """:meth:`contacts` and the log position, in one consistent read (None: no such
        workspace)."""
    async def note_list(self, workspace_id: str, contact_id: str) -> Listing | None:
        """:meth:`notes` and the log position, in one consistent read (None: no such live
        contact)."""

    # collaborative notes' documents (store/notes.py; the body changes through apply)
    async def note(self, workspace_id: str, note_id: str) -> dict[str, Any] | None: ...
    async def note_doc(self, workspace_id: str, note_id: str) -> NoteDoc | None:
        """The note and its document; None when ``workspace_id`` has no such note. Every
        update appended before the call is in the snapshot or in the updates."""
    async def note_snapshot(self, workspace_id: str, note_id: str) -> tuple[bytes | None, int]:
        """The snapshot and its version (``(None, 0)`` before the first compaction)."""
    async def append_note_updates(
        self, workspace_id: str, note_id: str, updates: list[bytes]
    ) -> list[int]:
        """Append in order, atomically; the ids (increasing) of the rows made."""
    async def compact_note(
        self, workspace_id: str, note_id: str, snapshot: bytes, covered: list[int],
        base_version: int,
    ) -> bool:
        """Atomically: the snapshot of version ``base_version`` (0: none) becomes
        ``snapshot`` (version + 1) and the updates ``covered`` go. False, with nothing
        changed, when the stored snapshot is no longer of ``base_version``."""
    async def note_storage(self, workspace_id: str, note_id: str) -> dict[str, int]:
        """``{"updates", "update_bytes", "snapshot_bytes"}`` kept for the note."""

    # the log
    async def position(self, workspace_id: str) -> Position | None:
        """Epoch, head and oldest kept seq in one read; None for an unknown or deleted
        workspace."""
    async def renew_epoch(self, workspace_id: str | None = None) -> int:
        """Give one workspace (every one, with None) a new random epoch, so that clients
        holding the old one resync; returns how many changed."""
    async def compacted_seqs(self, workspace_id: str, since: int, upto: int,
                             limit: int | None = None) -> list[int]:
        """The seqs of a compacted replay of ``(since, upto]``, in order: each contact's
        latest event when it is in that range, and every other (note) event."""
    async def events_at(self, workspace_id: str, seqs: list[int]) -> list[Event]:
        """The events with these seqs still kept, in seq order."""
    async def head_seq(self, workspace_id: str) -> int: ...
    async def heads(self, workspace_ids: list[str]) -> dict[str, int]:
        """The ``head_seq`` of each existing workspace among ``workspace_ids``, read
        together (one query per interval for a node's every room)."""
        ...
    async def oldest_seq(self, workspace_id: str) -> int: ...
    async def events_after(self, workspace_id: str, since: int, limit: int) -> list[Event]: ...
    async def delete_events_before(self, cutoff_iso: str) -> int: ...
    async def delete_refs_before(self, cutoff_iso: str) -> int: ...

    # delivery receipts and sessions
    async def advance_cursor(self, workspace_id: str, user_id: str, seq: int) -> int: ...
    async def cursor(self, workspace_id: str, user_id: str) -> int: ...
    async def save_session(self, session: SessionRow) -> None: ...
    async def save_sessions(self, sessions: list[SessionRow]) -> None:
        """:meth:`save_session` for each, in one transaction."""
        ...
    async def sessions(
        self, workspace_id: str, *, active: bool | None, user_id: str | None = None
    ) -> list[SessionRow]: ...
    async def stats(self, workspace_id: str, *, user_id: str | None = None) -> dict[str, Any]: ...
    async def delete_sessions_before(self, cutoff_iso: str) -> int: ...
