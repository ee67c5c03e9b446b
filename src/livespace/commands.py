"""What a client asks of a workspace, as the store and the service take it.

The domain's commands, free of any wire format: :mod:`livespace.protocol` parses socket
frames into them, the REST API parses request bodies into them, and the store applies
them (:mod:`livespace.store.domain`). Also the domain's few fixed vocabularies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

#: A member's roles, from the most to the least powerful.
ROLES = ("owner", "admin", "member", "viewer")
#: The fields of a contact a client may set.
CONTACT_FIELDS = ("name", "email", "phone", "company", "tags", "fields")
#: The durable events of a workspace's log (DESIGN.md section 3), and those of them that
#: a later event of the same contact supersedes (compacted replay).
CONTACT_EVENTS = frozenset({"contact_created", "contact_updated", "contact_deleted"})
EVENT_TYPES = CONTACT_EVENTS | {"note_added", "note_updated"}
#: How long a mutation's ``ref`` (socket) or ``Idempotency-Key`` (HTTP) is remembered:
#: a retry within it is applied once (DESIGN.md section 1).
REF_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CreateContact:
    name: str
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    tags: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpdateContact:
    id: str
    changes: dict[str, Any]
    base_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteContact:
    id: str


@dataclass(frozen=True, slots=True)
class AddNote:
    contact_id: str
    body: str


@dataclass(frozen=True, slots=True)
class UpdateNote:
    """A collaborative note's body caught up with its document (``note_updated``): made
    by the server (:mod:`livespace.notes`), never sent by clients."""

    id: str
    body: str


@dataclass(frozen=True, slots=True)
class ImportContacts:
    """Many contacts at once, all or nothing: one ``contact_created`` (and one ``seq``)
    each, in one transaction."""

    contacts: tuple[CreateContact, ...]


#: A change to a workspace's contacts and notes: it takes the next ``seq``.
Mutation = CreateContact | UpdateContact | DeleteContact | AddNote | UpdateNote | ImportContacts
