"""Workspaces and their members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from livespace.api.deps import Caller, JsonBody, MemberOf, NodeDep
from livespace.validation import invalid

router = APIRouter(prefix="/api/workspaces", tags=["workspaces"])


def _field(body: Any, name: str) -> Any:
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    return body.get(name)


@router.post("", status_code=201, summary="Create a workspace; the caller becomes its owner")
async def create_workspace(node: NodeDep, me: Caller, body: JsonBody) -> dict[str, Any]:
    workspace = await node.service.create_workspace(me, _field(body, "name"))
    return workspace.to_json()


@router.get("", summary="The caller's workspaces, with their role in each")
async def my_workspaces(node: NodeDep, me: Caller) -> dict[str, Any]:
    return {"workspaces": [w.to_json() for w in await node.service.workspaces_of(me)]}


@router.get("/{workspace_id}", summary="One workspace (members only)")
async def get_workspace(m: MemberOf) -> dict[str, Any]:
    return await m.workspace()


@router.delete("/{workspace_id}", status_code=204, summary="Delete a workspace (owners)")
async def delete_workspace(workspace_id: str, node: NodeDep, me: Caller) -> Response:
    await node.service.delete_workspace(workspace_id, me)
    return Response(status_code=204)


@router.get("/{workspace_id}/members", summary="Members and their roles (members only)")
async def members(m: MemberOf) -> dict[str, Any]:
    return {"members": [member.to_json() for member in await m.members()]}


@router.put("/{workspace_id}/members/{user_id}",
            summary="Add a member or change their role (owners and admins)")
async def set_member(workspace_id: str, user_id: str, node: NodeDep, me: Caller,
                     body: JsonBody) -> dict[str, Any]:
    member = await node.service.set_member(workspace_id, me, user_id, _field(body, "role"))
    return member.to_json()


@router.delete("/{workspace_id}/members/{user_id}", status_code=204,
               summary="Remove a member; their open sockets close with 4003")
async def remove_member(workspace_id: str, user_id: str, node: NodeDep, me: Caller) -> Response:
    await node.service.remove_member(workspace_id, me, user_id)
    return Response(status_code=204)
