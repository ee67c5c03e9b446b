"""A client's request: authorise -> validate -> commit (-> publish, by the store's hook).

The one path for every change, whether it came over the socket or over HTTP, so both
emit the same durable event and enforce the same roles. Reads over HTTP go through a
:class:`Membership`, which only :meth:`Service.member` makes: a route holds one only
once its caller was found a member with the role it needs, and reads through it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING, Any

from livespace.auth import Principal
from livespace.codes import Error, Problem
from livespace.commands import ROLES, Mutation
from livespace.hub import Hub
from livespace.outage import is_outage
from livespace.resume import Resync, resume
from livespace.store import Actor, Committed, Event, Listing, Member, SessionRow, Store, Workspace
from livespace.validation import MAX_NAME, entity_id, invalid, text

if TYPE_CHECKING:
    from livespace.metrics import Metrics

MANAGERS = ("owner", "admin")
READ_ONLY = "viewers may not change contacts or notes"
ASSIGNABLE = ("admin", "member", "viewer")


def forbidden(message: str) -> Problem:
    return Problem(Error.FORBIDDEN, message)


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.user_id, principal.name or principal.email or principal.user_id)


class Service:
    def __init__(self, store: Store, hub: Hub, metrics: Metrics | None = None) -> None:
        self.store = store
        self.hub = hub
        self.metrics = metrics

    async def role(self, workspace_id: str, user_id: str) -> str:
        """The caller's role; forbidden for non-members and unknown workspaces alike."""
        try:
            entity_id(workspace_id, "workspace_id")
        except Problem:
            raise forbidden("not a member of this workspace") from None
        role = await self.hub.memberships.role(workspace_id, user_id)
        if role is None:
            raise forbidden("not a member of this workspace")
        return role

    async def member(self, workspace_id: str, principal: Principal,
                     at_least: str = "viewer") -> Membership:
        """``principal`` as a member of the workspace with ``at_least`` that role
        (:data:`~livespace.commands.ROLES` order); forbidden otherwise."""
        role = await self.role(workspace_id, principal.user_id)
        if ROLES.index(role) > ROLES.index(at_least):
            raise forbidden(READ_ONLY if at_least == "member" else f"{at_least}s and above only")
        return Membership(self, workspace_id, principal, role)

    async def mutate(
        self,
        workspace_id: str,
        principal: Principal,
        mutation: Mutation,
        ref: str | None,
        role: str | None = None,
    ) -> Committed:
        """Apply a contact/note change (its event is published by the store's
        ``on_commit``, in seq order, before this returns)."""
        if role is None:
            role = await self.role(workspace_id, principal.user_id)
        return await self.submit(workspace_id, principal, mutation, ref, role)

    def submit(
        self,
        workspace_id: str,
        principal: Principal,
        mutation: Mutation,
        ref: str | None,
        role: str,
    ) -> asyncio.Future[Committed]:
        """:meth:`mutate` for a caller that knows the role and pipelines: queued now, in
        call order; forbidden for viewers (raised at once)."""
        if role == "viewer":
            raise forbidden(READ_ONLY)
        future = self.store.submit(workspace_id, actor_of(principal), mutation, ref)
        if self.metrics is not None:
            future.add_done_callback(functools.partial(self._answered, time.monotonic()))
        return future

    def _answered(self, started: float, future: asyncio.Future[Committed]) -> None:
        assert self.metrics is not None
        error = None if future.cancelled() else future.exception()
        if error is None:
            outcome = "cancelled" if future.cancelled() else "ack"
        elif isinstance(error, Problem):
            outcome = str(error.code)
        else:
            outcome = "unavailable" if is_outage(error) else "internal"
        self.metrics.mutations.labels(outcome).inc()
        self.metrics.commit.observe(time.monotonic() - started)

    # ---- workspaces and members ---------------------------------------------------------

    async def workspaces_of(self, principal: Principal) -> list[Workspace]:
        """The caller's workspaces, each with their role in it."""
        return await self.store.workspaces_of(principal.user_id)

    async def create_workspace(self, principal: Principal, name: Any) -> Workspace:
        return await self.store.create_workspace(
            text(name, "name", 1, MAX_NAME), principal.user_id
        )

    async def set_member(
        self, workspace_id: str, principal: Principal, user_id: str, role: Any
    ) -> Member:
        mine = await self.role(workspace_id, principal.user_id)
        entity_id(user_id, "user_id")
        if role not in ASSIGNABLE:
            raise invalid("role", "must be one of " + ", ".join(ASSIGNABLE))
        theirs = await self.store.role_of(workspace_id, user_id)
        self._may_manage(mine, theirs, role)
        if theirs == "owner":
            await self._keep_an_owner(workspace_id, user_id)
        member = await self.store.set_member(workspace_id, user_id, role)
        if theirs is not None and theirs != role:
            await self.hub.publish_control(
                workspace_id, {"kind": "role_changed", "user_id": user_id, "role": role}
            )
        return member

    async def remove_member(self, workspace_id: str, principal: Principal, user_id: str) -> None:
        mine = await self.role(workspace_id, principal.user_id)
        entity_id(user_id, "user_id")
        theirs = await self.store.role_of(workspace_id, user_id)
        if theirs is None:
            raise Problem(Error.NOT_FOUND, "no such member", details={"user_id": user_id})
        if user_id != principal.user_id:
            self._may_manage(mine, theirs, None)
        if theirs == "owner":
            await self._keep_an_owner(workspace_id, user_id)
        await self.store.remove_member(workspace_id, user_id)
        await self.hub.publish_control(workspace_id, {"kind": "member_removed", "user_id": user_id})

    async def delete_workspace(self, workspace_id: str, principal: Principal) -> None:
        if await self.role(workspace_id, principal.user_id) != "owner":
            raise forbidden("only an owner may delete a workspace")
        await self.store.delete_workspace(workspace_id)
        await self.hub.publish_control(workspace_id, {"kind": "workspace_deleted"})

    @staticmethod
    def _may_manage(mine: str, theirs: str | None, new_role: str | None) -> None:
        if mine not in MANAGERS:
            raise forbidden("only owners and admins manage members")
        if mine == "admin" and (theirs in MANAGERS or new_role == "admin"):
            raise forbidden("admins manage members and viewers only")

    async def _keep_an_owner(self, workspace_id: str, user_id: str) -> None:
        owners = [m for m in await self.store.members(workspace_id) if m.role == "owner"]
        if [m.user_id for m in owners] == [user_id]:
            raise Problem(Error.CONFLICT, "a workspace keeps at least one owner")


class Membership:
    """A caller found a member of one workspace, with their role, and what such a member
    reads of it (each read answers for that workspace only)."""

    __slots__ = ("principal", "role", "service", "workspace_id")

    def __init__(self, service: Service, workspace_id: str, principal: Principal,
                 role: str) -> None:
        self.service = service
        self.workspace_id = workspace_id
        self.principal = principal
        self.role = role

    @property
    def manages(self) -> bool:
        """Owners and admins: they see every member's figures, others their own."""
        return self.role in MANAGERS

    async def mutate(self, mutation: Mutation, ref: str | None) -> Committed:
        return await self.service.submit(self.workspace_id, self.principal, mutation, ref,
                                         self.role)

    async def workspace(self) -> dict[str, Any]:
        workspace = await self.service.store.get_workspace(self.workspace_id)
        if workspace is None:  # deleted since the check
            raise forbidden("not a member of this workspace")
        return {**workspace.to_json(), "role": self.role}

    async def members(self) -> list[Member]:
        return await self.service.store.members(self.workspace_id)

    async def contacts(self, *, after: str | None, limit: int,
                       include_deleted: bool) -> Listing:
        listing = await self.service.store.contact_list(
            self.workspace_id, after=after, limit=limit, include_deleted=include_deleted)
        if listing is None:
            raise forbidden("not a member of this workspace")
        return listing

    async def contact(self, contact_id: str, *, include_deleted: bool) -> dict[str, Any]:
        entity_id(contact_id)
        contact = await self.service.store.get_contact(self.workspace_id, contact_id,
                                                       include_deleted=include_deleted)
        if contact is None:
            raise no_such_contact(contact_id)
        return contact

    async def notes(self, contact_id: str) -> Listing:
        entity_id(contact_id)
        listing = await self.service.store.note_list(self.workspace_id, contact_id)
        if listing is None:
            raise no_such_contact(contact_id)
        return listing

    async def events(self, *, since: int, limit: int, epoch: str | None,
                     compact: bool) -> dict[str, Any]:
        """The log after ``since`` (compacted: each contact's latest event once, every
        note event); resync_required outside the kept log or for another ``epoch``."""
        store, ws = self.service.store, self.workspace_id
        position = await store.position(ws)
        if position is None:
            raise forbidden("not a member of this workspace")
        oldest, head = position.oldest, position.head
        if isinstance(resume(since, delivered=head, head=head, oldest=oldest, epoch=epoch,
                             current=position.epoch), Resync):
            raise Problem(Error.RESYNC_REQUIRED, "since is outside the kept log: resync",
                          details={"oldest_seq": oldest, "head_seq": head,
                                   "epoch": position.epoch})
        rows: list[Event]
        if compact:
            seqs = await store.compacted_seqs(ws, since, head, limit + 1)
            rows = await store.events_at(ws, seqs[:limit])
            has_more = len(seqs) > limit
        else:
            rows = await store.events_after(ws, since, limit)
            has_more = bool(rows) and rows[-1].seq < head
        cursor = await store.cursor(ws, self.principal.user_id)
        return {"events": [e.frame() for e in rows], "head_seq": head, "has_more": has_more,
                "oldest_seq": oldest, "cursor": cursor, "epoch": position.epoch,
                "compacted": compact}

    async def stats(self) -> dict[str, Any]:
        """Managers see everyone's session figures, others their own."""
        user = None if self.manages else self.principal.user_id
        figures = await self.service.store.stats(self.workspace_id, user_id=user)
        room = self.service.hub.rooms.get(self.workspace_id)
        return {"workspace_id": self.workspace_id, "scope": "all" if user is None else "mine",
                **figures, "live": {"connections_on_node": len(room.conns) if room else 0}}

    async def sessions(self, *, active: bool | None) -> list[SessionRow]:
        user = None if self.manages else self.principal.user_id
        return await self.service.store.sessions(self.workspace_id, active=active,
                                                 user_id=user)


def no_such_contact(contact_id: str) -> Problem:
    return Problem(Error.NOT_FOUND, "no such contact", details={"id": contact_id})
