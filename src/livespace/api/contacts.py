"""Contacts, notes and the event log over HTTP: the same service path as the socket."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from livespace import protocol as p
from livespace import validation as v
from livespace.api.deps import ImportBody, JsonBody, MemberOf, WriterOf
from livespace.commands import AddNote, CreateContact, DeleteContact, UpdateContact
from livespace.store import Committed

router = APIRouter(prefix="/api/workspaces/{workspace_id}", tags=["contacts"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


def _ref(key: str | None) -> str | None:
    if key is not None and not 1 <= len(key) <= p.MAX_REF:
        raise v.invalid("Idempotency-Key", f"must be 1-{p.MAX_REF} characters")
    return key


def _result(committed: Committed) -> dict[str, Any]:
    return {**committed.entity, "seq": committed.seq}


def _data(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise v.invalid("body", "must be a JSON object")
    v.check_json_value(body, "body")
    return body


@router.get("/contacts", summary="Contacts, by id, paginated with `after`")
async def list_contacts(
    m: MemberOf, after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100, include_deleted: bool = False,
) -> dict[str, Any]:
    """One consistent read: the page reflects every event up to `seq` and none after, so
    connecting with `since=seq&epoch=epoch` next misses nothing and repeats nothing."""
    listing = await m.contacts(after=after, limit=limit, include_deleted=include_deleted)
    rows = listing.items
    return {"contacts": rows, "next": rows[-1]["id"] if len(rows) == limit else None,
            "seq": listing.seq, "epoch": listing.epoch}


@router.post("/contacts", status_code=201, summary="Create a contact (emits contact_created)")
async def create_contact(body: JsonBody, m: WriterOf,
                         key: IdempotencyKey = None) -> dict[str, Any]:
    mutation = p.validate("contact_created", _data(body))
    assert isinstance(mutation, CreateContact)
    return _result(await m.mutate(mutation, _ref(key)))


@router.post("/contacts/import", status_code=201,
             summary="Create up to 1,000 contacts, all or nothing (one contact_created each)")
async def import_contacts(body: ImportBody, m: WriterOf,
                          key: IdempotencyKey = None) -> dict[str, Any]:
    """Body `{"contacts": [contact, ...]}` (1-1,000, each as for `POST .../contacts`). One
    transaction: every contact is created, with consecutive seqs, or none is; the first
    invalid one is named by its index (422, `details.index`)."""
    return _result(await m.mutate(p.import_contacts(body), _ref(key)))


@router.get("/contacts/{contact_id}", summary="One contact (tombstones with include_deleted)")
async def get_contact(contact_id: str, m: MemberOf,
                      include_deleted: bool = False) -> dict[str, Any]:
    return await m.contact(contact_id, include_deleted=include_deleted)


@router.patch("/contacts/{contact_id}", summary="Change fields (emits contact_updated)")
async def update_contact(
    contact_id: str, body: JsonBody, m: WriterOf,
    key: IdempotencyKey = None, if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Body: the fields to change, and optionally `base_version` (or an `If-Match` header)."""
    changes = dict(_data(body))
    base = changes.pop("base_version", None)
    if base is None and if_match:
        try:
            base = int(if_match.strip('"W/ '))
        except ValueError:
            raise v.invalid("If-Match", "must be a contact version") from None
    mutation = p.validate("contact_updated",
                          {"id": contact_id, "changes": changes, "base_version": base})
    assert isinstance(mutation, UpdateContact)
    return _result(await m.mutate(mutation, _ref(key)))


@router.delete("/contacts/{contact_id}", summary="Delete (tombstone; emits contact_deleted)")
async def delete_contact(contact_id: str, m: WriterOf,
                         key: IdempotencyKey = None) -> dict[str, Any]:
    mutation = p.validate("contact_deleted", {"id": contact_id})
    assert isinstance(mutation, DeleteContact)
    return _result(await m.mutate(mutation, _ref(key)))


@router.get("/contacts/{contact_id}/notes", summary="A contact's notes, oldest first")
async def list_notes(contact_id: str, m: MemberOf) -> dict[str, Any]:
    """One consistent read, like the contact list: with `seq` and `epoch`."""
    listing = await m.notes(contact_id)
    return {"notes": listing.items, "seq": listing.seq, "epoch": listing.epoch}


@router.post("/contacts/{contact_id}/notes", status_code=201,
             summary="Add a note (emits note_added)")
async def add_note(contact_id: str, body: JsonBody, m: WriterOf,
                   key: IdempotencyKey = None) -> dict[str, Any]:
    mutation = p.validate("note_added", {**_data(body), "contact_id": contact_id})
    assert isinstance(mutation, AddNote)
    return _result(await m.mutate(mutation, _ref(key)))


@router.get("/events", summary="History of durable events after `since`")
async def events(
    m: MemberOf,
    since: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    epoch: Annotated[str | None, Query(max_length=200)] = None,
    compact: bool = False,
) -> dict[str, Any]:
    """`since` older than retention or above the head, or an `epoch` that is no longer
    the log's: 410 `resync_required`. With `compact=1`, each contact changed after
    `since` once, as its latest event, and every note event (page on with the last
    event's `seq`)."""
    return await m.events(since=since, limit=limit, epoch=epoch, compact=compact)
