"""The event log of each workspace and its group commit.

:class:`EventLog` is the part of :class:`~livespace.store.sql.SqlStore` that takes
mutations and reads the log. Group commit: :meth:`EventLog.apply` and
:meth:`EventLog.submit` queue a mutation for its workspace; one committer task per busy
workspace takes up to :attr:`~EventLog.batch_max` of them, FIFO, into one transaction (the
workspace row locked once, refs and contacts read with one query each,
:func:`livespace.store.domain.plan` in Python, the writes of :mod:`.batch`, one commit),
hands the events to :attr:`~EventLog.on_commit`, then answers the callers. Alone, a
mutation is a batch of one; under load the next batch gathers while one commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta

from livespace.codes import Problem
from livespace.commands import REF_LIFETIME, ImportContacts, Mutation
from livespace.store.batch import known_refs, live_contacts, new_id, write_plan
from livespace.store.db import Db
from livespace.store.domain import Plan, Request, not_found, referenced_contacts, referenced_notes
from livespace.store.domain import plan as domain_plan
from livespace.store.model import Actor, Committed, Event
from livespace.store.notes import notes_by_id
from livespace.store.rows import event_of
from livespace.times import iso_ago, normalised, now_iso

log = logging.getLogger(__name__)

#: At most this many mutations of a workspace share one transaction.
BATCH_MAX = 256


class EventLog:
    """Mutations in, events out, in ``seq`` order per workspace (see ``Store``)."""

    def __init__(
        self, db: Db, *, ref_ttl_s: float = REF_LIFETIME.total_seconds(), batch_max: int = BATCH_MAX
    ) -> None:
        self.db = db
        self.ref_ttl_s = ref_ttl_s
        self.batch_max = batch_max
        #: Awaited after each commit with its events in seq order, before the callers of
        #: the batch get their results (see ``Store.on_commit``).
        self.on_commit: Callable[[list[Event]], Awaitable[None]] | None = None
        # the first statement of a batch: PostgreSQL locks the row until commit; SQLite's
        # BEGIN IMMEDIATE has already locked the whole database
        self._postgres = db.dialect == "postgres"
        self._lock_head = "SELECT head_seq FROM workspaces WHERE id = $1 AND deleted_at IS NULL" + (
            " FOR UPDATE" if self._postgres else ""
        )
        self._queues: dict[str, deque[tuple[Request, asyncio.Future[Committed]]]] = {}
        self._committers: set[asyncio.Task[None]] = set()

    async def drain(self) -> None:
        """Wait until every queued mutation is committed (or failed)."""
        while self._committers:
            await asyncio.gather(*self._committers, return_exceptions=True)

    # ---- mutations ---------------------------------------------------------------------------

    def submit(
        self, workspace_id: str, actor: Actor, mutation: Mutation, ref: str | None
    ) -> asyncio.Future[Committed]:
        """Queue a mutation for the workspace's committer; the future gets its
        :class:`Committed` or its :class:`Problem` (see :meth:`apply`).

        Not a coroutine: a caller that pipelines (a socket session) queues mutations in
        the order it received them without a task each, so they get seqs in that order.
        """
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(workspace_id)
        if queue is None:
            queue = self._queues[workspace_id] = deque()
            task = asyncio.get_running_loop().create_task(self._commit_all(workspace_id, queue))
            self._committers.add(task)
            task.add_done_callback(self._committers.discard)
        queue.append((Request(actor, mutation, ref), future))
        return future

    async def apply(
        self, workspace_id: str, actor: Actor, mutation: Mutation, ref: str | None
    ) -> Committed:
        """Apply one mutation (see the contract on ``Store``), committed in a batch with
        the mutations of the workspace queued meanwhile."""
        return await self.submit(workspace_id, actor, mutation, ref)

    async def _commit_all(
        self, workspace_id: str, queue: deque[tuple[Request, asyncio.Future[Committed]]]
    ) -> None:
        """The workspace's committer: batches of up to :attr:`batch_max` queued
        mutations, FIFO, one transaction each, until the queue is empty. An import
        counts as one mutation per contact (and is never split)."""
        try:
            while queue:
                batch: list[tuple[Request, asyncio.Future[Committed]]] = []
                weight = 0
                while queue and weight < self.batch_max:
                    item = queue.popleft()
                    if not item[1].cancelled():  # its caller is gone: not applied
                        batch.append(item)
                        mutation = item[0].mutation
                        weight += (len(mutation.contacts)
                                   if isinstance(mutation, ImportContacts) else 1)
                if batch:
                    await self._commit_batch(workspace_id, batch)
        finally:
            del self._queues[workspace_id]
            for _, future in queue:  # only when cancelled (the store is closing)
                future.cancel()

    async def _commit_batch(
        self, workspace_id: str, batch: list[tuple[Request, asyncio.Future[Committed]]]
    ) -> None:
        """Commit one batch, publish its events (:attr:`on_commit`), then answer each
        caller in FIFO order. An unexpected error fails every caller of the batch."""
        try:
            plan = await self._write_batch(workspace_id, [request for request, _ in batch])
        except BaseException as err:
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(err, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            log.error("a batch of %d mutations of workspace %s failed", len(batch),
                      workspace_id, exc_info=err)
            return
        try:
            if plan.events and self.on_commit is not None:
                try:
                    await self.on_commit(plan.events)
                except Exception:  # committed all the same: readers catch up from the store
                    log.exception("on_commit failed for seqs %d..%d of workspace %s",
                                  plan.events[0].seq, plan.events[-1].seq, workspace_id)
        finally:  # committed: answered even when cancelled meanwhile
            for (_, future), result in zip(batch, plan.results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Problem):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _write_batch(self, workspace_id: str, requests: list[Request]) -> Plan:
        """One transaction: lock the workspace row, read the refs and contacts the batch
        needs (one query each), plan in Python, write with one statement per table."""
        async with self.db.transaction() as tx:
            head = await tx.fetchval(self._lock_head, workspace_id)
            if head is None:
                missing = Plan(0)
                missing.results = [not_found("workspace", workspace_id) for _ in requests]
                return missing
            since = iso_ago(timedelta(seconds=self.ref_ttl_s))
            known = await known_refs(tx, workspace_id, requests, since, postgres=self._postgres)
            contacts = await live_contacts(tx, workspace_id, referenced_contacts(requests),
                                           postgres=self._postgres)
            notes = await notes_by_id(tx, workspace_id, referenced_notes(requests))
            plan = domain_plan(workspace_id, int(head), requests, contacts, known, now_iso(),
                               new_id, notes)
            if plan.events:
                await write_plan(tx, workspace_id, plan, postgres=self._postgres)
        return plan

    # ---- the log -----------------------------------------------------------------------------

    async def head_seq(self, workspace_id: str) -> int:
        seq = await self.db.fetchval("SELECT head_seq FROM workspaces WHERE id = $1", workspace_id)
        return 0 if seq is None else int(seq)

    async def heads(self, workspace_ids: list[str]) -> dict[str, int]:
        """``head_seq`` of each known workspace among ``workspace_ids``: one query on
        PostgreSQL (an array), one per 500 ids on SQLite."""
        if self._postgres:
            rows = await self.db.fetchall(
                "SELECT id, head_seq FROM workspaces WHERE id = ANY($1::text[])",
                workspace_ids)
            return {str(r["id"]): int(r["head_seq"]) for r in rows}
        heads: dict[str, int] = {}
        for at in range(0, len(workspace_ids), 500):
            chunk = workspace_ids[at:at + 500]
            marks = ", ".join(f"${n}" for n in range(1, len(chunk) + 1))
            for r in await self.db.fetchall(
                    f"SELECT id, head_seq FROM workspaces WHERE id IN ({marks})", *chunk):
                heads[str(r["id"])] = int(r["head_seq"])
        return heads

    async def oldest_seq(self, workspace_id: str) -> int:
        """The first seq still kept; head_seq + 1 when nothing is kept."""
        row = await self.db.fetchone(
            "SELECT w.head_seq, (SELECT min(e.seq) FROM events e WHERE e.workspace_id = w.id)"
            " AS oldest FROM workspaces w WHERE w.id = $1",
            workspace_id,
        )
        if row is None:
            return 1
        return int(row["head_seq"]) + 1 if row["oldest"] is None else int(row["oldest"])

    async def events_after(self, workspace_id: str, since: int, limit: int) -> list[Event]:
        rows = await self.db.fetchall(
            "SELECT workspace_id, seq, event_id, type, actor_id, actor_name, data, created_at"
            " FROM events WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            workspace_id, since, limit,
        )
        return [event_of(r) for r in rows]

    async def delete_events_before(self, cutoff_iso: str) -> int:
        """Delete events older than the cutoff, a workspace's newest too (its head_seq
        stays, so :meth:`oldest_seq` still answers). Returns how many went."""
        return await self.db.execute(
            "DELETE FROM events WHERE created_at < $1", normalised(cutoff_iso)
        )

    async def delete_refs_before(self, cutoff_iso: str) -> int:
        return await self.db.execute(
            "DELETE FROM mutation_refs WHERE created_at < $1", normalised(cutoff_iso)
        )
