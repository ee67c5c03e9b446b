"""What a batch of mutations does to a workspace, as pure functions over records.

No I/O, no clock, no randomness: :class:`~livespace.store.sql.SqlStore` locks the
workspace, reads the rows a batch touches, calls :func:`plan` with the time and an id
source, and writes what the :class:`Plan` holds. The mutations of a batch are applied
one after the other, as if each had its own transaction: a later one sees the earlier
ones' changes, and one that fails takes no ``seq`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from livespace.codes import Error, Problem
from livespace.commands import (
    CONTACT_FIELDS,
    AddNote,
    CreateContact,
    DeleteContact,
    ImportContacts,
    Mutation,
    UpdateContact,
    UpdateNote,
)
from livespace.store.model import Actor, Committed, Event

#: (user id, ref): the key of an idempotent mutation.
RefKey = tuple[str, str]
#: A note's body follows its document at most this often (``note_updated``).
NOTE_UPDATE_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Request:
    """One ``apply`` call waiting for its batch."""

    actor: Actor
    mutation: Mutation
    ref: str | None


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact row as a batch sees it.

    ``entity`` is the contact as clients see it while live; ``stored`` tells whether its
    row exists already (to be updated) or was created in this batch (to be inserted).
    """

    entity: dict[str, Any]
    field_versions: dict[str, int]
    stored: bool = True
    deleted_at: str | None = None

    @property
    def live(self) -> bool:
        return self.deleted_at is None


@dataclass(slots=True)
class Plan:
    """The outcome of a batch: one result per request (in order) and the rows to write."""

    head: int
    results: list[Committed | Problem] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: contacts created or changed, by id, in their final state
    contacts: dict[str, Contact] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    #: notes whose body changed (``note_updated``), by id, in their final state
    note_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (user id, ref, seq, entity) of each idempotent mutation applied
    refs: list[tuple[str, str, int, dict[str, Any]]] = field(default_factory=list)


def not_found(what: str, entity_id: str) -> Problem:
    return Problem(Error.NOT_FOUND, f"{what} {entity_id} not found", details={"id": entity_id})


def referenced_contacts(requests: Sequence[Request]) -> list[str]:
    """The ids of the existing contacts a batch reads, each once, in first-use order."""
    ids: dict[str, None] = {}
    for request in requests:
        m = request.mutation
        if isinstance(m, UpdateContact | DeleteContact):
            ids[m.id] = None
        elif isinstance(m, AddNote):
            ids[m.contact_id] = None
    return list(ids)


def referenced_notes(requests: Sequence[Request]) -> list[str]:
    """The ids of the notes a batch changes, each once."""
    return list({r.mutation.id: None for r in requests if isinstance(r.mutation, UpdateNote)})


def plan(
    workspace_id: str,
    head: int,
    requests: Sequence[Request],
    contacts: dict[str, Contact],
    known_refs: dict[RefKey, Committed],
    now: str,
    new_id: Callable[[], str],
    notes: dict[str, dict[str, Any]] | None = None,
) -> Plan:
    """Apply ``requests`` in order after seq ``head``.

    ``notes`` holds the notes that ``UpdateNote`` requests change (missing: not_found).

    ``contacts`` holds the live contacts the batch references (a missing id is
    not_found); ``known_refs`` the first outcome of the refs already applied. A request
    whose ref was applied before, in ``known_refs`` or earlier in this batch, gets that
    outcome again with ``event=None``; one that raises a :class:`Problem` gets it as
    its result and takes no seq. Anything else raised is a bug and fails the batch.
    """
    out = Plan(head)
    seen = dict(known_refs)
    state = dict(contacts)
    note_state = dict(notes or {})
    for request in requests:
        actor, mutation, ref = request.actor, request.mutation, request.ref
        if ref is not None and (actor.id, ref) in seen:
            out.results.append(seen[(actor.id, ref)])
            continue
        if isinstance(mutation, ImportContacts):
            imported = import_contacts(out, state, workspace_id, actor, mutation, now, new_id)
            out.results.append(imported)
            if ref is not None:
                seen[(actor.id, ref)] = Committed(imported.seq, imported.entity, None)
                out.refs.append((actor.id, ref, imported.seq, imported.entity))
            continue
        try:
            if isinstance(mutation, UpdateNote):
                body = update_note(note_state, mutation, now)
                note_state[mutation.id] = out.note_bodies[mutation.id] = body
                event_type, entity, data, changed = "note_updated", body, body, None
            else:
                event_type, entity, data, changed = change(
                    workspace_id, actor, mutation, state, now, new_id
                )
        except Problem as problem:
            out.results.append(problem)
            continue
        # changed is None for a note's body, which is in note_bodies already
        if isinstance(changed, Contact):
            state[changed.entity["id"]] = out.contacts[changed.entity["id"]] = changed
        elif changed is not None:
            out.notes.append(changed)
        out.head += 1
        event = Event(workspace_id, out.head, new_id(), event_type,
                      Actor(actor.id, actor.name), now, data)
        out.events.append(event)
        out.results.append(Committed(out.head, entity, event))
        if ref is not None:
            seen[(actor.id, ref)] = Committed(out.head, entity, None)
            out.refs.append((actor.id, ref, out.head, entity))
    return out


def change(
    workspace_id: str,
    actor: Actor,
    mutation: Mutation,
    contacts: dict[str, Contact],
    now: str,
    new_id: Callable[[], str],
) -> tuple[str, dict[str, Any], dict[str, Any], Contact | dict[str, Any]]:
    """One mutation: (event type, entity, event data, the contact or note written)."""
    match mutation:
        case CreateContact():
            created = create_contact(workspace_id, actor, mutation, now, new_id())
            return "contact_created", created.entity, created.entity, created
        case UpdateContact():
            check_changes(mutation)  # before not_found, as a single apply always did
            updated = update_contact(_live(contacts, mutation.id), mutation, now)
            data = {**updated.entity, "changed": list(mutation.changes)}
            return "contact_updated", updated.entity, data, updated
        case DeleteContact():
            deleted = delete_contact(_live(contacts, mutation.id), now)
            tombstone = deleted_entity(deleted)
            return "contact_deleted", tombstone, tombstone, deleted
        case AddNote():
            _live(contacts, mutation.contact_id)
            note = add_note(workspace_id, actor, mutation, now, new_id())
            return "note_added", note, note, note
        case UpdateNote():
            raise TypeError("UpdateNote is planned by update_note")
        case ImportContacts():
            raise TypeError("ImportContacts is planned by import_contacts")


def import_contacts(
    out: Plan, state: dict[str, Contact], workspace_id: str, actor: Actor, m: ImportContacts,
    now: str, new_id: Callable[[], str],
) -> Committed:
    """Create every contact of ``m`` in ``out``, one ``contact_created`` each (creates
    cannot fail once validated: all or nothing is the batch's transaction). The result's
    entity is ``{"contacts": [contact with its seq, ...]}``, its seq the last one's."""
    created: list[dict[str, Any]] = []
    event: Event | None = None
    for item in m.contacts:
        contact = create_contact(workspace_id, actor, item, now, new_id())
        state[contact.entity["id"]] = out.contacts[contact.entity["id"]] = contact
        out.head += 1
        event = Event(workspace_id, out.head, new_id(), "contact_created",
                      Actor(actor.id, actor.name), now, contact.entity)
        out.events.append(event)
        created.append({**contact.entity, "seq": out.head})
    return Committed(out.head, {"contacts": created}, event)


def _live(contacts: dict[str, Contact], contact_id: str) -> Contact:
    contact = contacts.get(contact_id)
    if contact is None or not contact.live:
        raise not_found("contact", contact_id)
    return contact


def create_contact(
    workspace_id: str, actor: Actor, m: CreateContact, now: str, contact_id: str
) -> Contact:
    entity: dict[str, Any] = {
        "id": contact_id,
        "workspace_id": workspace_id,
        "name": m.name,
        "email": m.email,
        "phone": m.phone,
        "company": m.company,
        "tags": list(m.tags),
        "fields": dict(m.fields),
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "created_by": actor.id,
    }
    return Contact(entity, {f: 1 for f in CONTACT_FIELDS}, stored=False)


def check_changes(m: UpdateContact) -> None:
    """validation_failed when ``changes`` names a field a contact does not have."""
    unknown = sorted(set(m.changes) - set(CONTACT_FIELDS))
    if unknown:
        raise Problem(
            Error.VALIDATION_FAILED, f"changes: unknown field {unknown[0]}",
            details={"field": f"changes.{unknown[0]}", "reason": "unknown field"},
        )


def update_contact(current: Contact, m: UpdateContact, now: str) -> Contact:
    """Merge ``m.changes``; a stale ``base_version`` conflicts only on fields changed
    since (the problem carries the current contact)."""
    check_changes(m)
    entity = current.entity
    if m.base_version is not None and m.base_version < entity["version"]:
        stale = [f for f in m.changes if current.field_versions.get(f, 1) > m.base_version]
        if stale:
            raise Problem(
                Error.CONFLICT,
                f"contact {m.id} changed since version {m.base_version}: {', '.join(stale)}",
                details={"current": entity, "fields": stale},
            )
    version = entity["version"] + 1
    return replace(
        current,
        entity={**entity, **m.changes, "version": version, "updated_at": now},
        field_versions={**current.field_versions, **{f: version for f in m.changes}},
    )


def delete_contact(current: Contact, now: str) -> Contact:
    """Soft delete: the row stays as a tombstone with ``deleted_at`` and a new version."""
    entity = {**current.entity, "version": current.entity["version"] + 1, "updated_at": now}
    return replace(current, entity=entity, deleted_at=now)


def deleted_entity(tombstone: Contact) -> dict[str, Any]:
    """What a delete's ack and event carry."""
    entity = tombstone.entity
    return {
        "id": entity["id"],
        "workspace_id": entity["workspace_id"],
        "version": entity["version"],
        "deleted_at": tombstone.deleted_at,
        "deleted": True,
        "name": entity["name"],
    }


def add_note(workspace_id: str, actor: Actor, m: AddNote, now: str, note_id: str
             ) -> dict[str, Any]:
    return {
        "id": note_id,
        "workspace_id": workspace_id,
        "contact_id": m.contact_id,
        "body": m.body,
        "author": {"id": actor.id, "name": actor.name},
        "created_at": now,
        "version": 1,
        "updated_at": now,
    }


def update_note(notes: dict[str, dict[str, Any]], m: UpdateNote, now: str) -> dict[str, Any]:
    """The note with its document's body and the next version.

    conflict (``details.reason`` "unchanged") when the body is already that;
    rate_limited with ``retry_after`` when its last ``note_updated`` is less than
    :data:`NOTE_UPDATE_INTERVAL_S` old (whichever node asks: at most one
    ``note_updated`` per second per note).
    """
    note = notes.get(m.id)
    if note is None:
        raise not_found("note", m.id)
    if note["body"] == m.body:
        raise Problem(Error.CONFLICT, "note body unchanged", details={"reason": "unchanged"})
    since = (datetime.fromisoformat(now) - datetime.fromisoformat(note["updated_at"]))
    wait = NOTE_UPDATE_INTERVAL_S - since.total_seconds()
    if wait > 0 and note["version"] > 1:  # the last note_updated (note_added is not one)
        raise Problem(Error.RATE_LIMITED, "note updated less than a second ago",
                      retry_after=round(wait, 3))
    return {**note, "body": m.body, "version": note["version"] + 1, "updated_at": now}
