"""A client's request: authorise -> validate -> commit (-> publish, by the store's hook).

The one path for every change, whether it came over the socket or over HTTP, so both
emit the same durable event and enforce the same roles.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING, Any

from livespace.auth import Principal
from livespace.codes import Error, Problem
from livespace.commands import Mutation
from livespace.hub import Hub
from livespace.outage import is_outage
from livespace.store import Actor, Committed, Member, Store, Workspace
from livespace.validation import MAX_NAME, entity_id, invalid, text

if TYPE_CHECKING:
    from livespace.metrics import Metrics

MANAGERS = ("owner", "admin")
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
            raise forbidden("viewers may not change contacts or notes")
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
