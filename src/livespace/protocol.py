"""Client frames in, server frames out: parsing, validation and encoding.

Pure: no I/O, no asyncio. :func:`parse` turns the text of one WebSocket frame into a
:class:`Frame` (or a list of them, for batch clients) or raises :class:`Problem`;
the ``encode_*`` functions build the JSON text of server frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from livespace.codes import Error, Problem
from livespace.commands import (
    AddNote,
    CreateContact,
    DeleteContact,
    ImportContacts,
    Mutation,
    UpdateContact,
)
from livespace.jsoncodec import loads
from livespace.times import now_iso
from livespace.validation import (
    MAX_ID,
    MAX_NOTE,
    MAX_TOKEN,
    as_object,
    boolean,
    check_json_value,
    contact_fields,
    entity_id,
    integer,
    invalid,
    only,
    required,
    text,
)

# ---- frame limits (see docs/security.md; value limits in livespace.validation) ---------

MAX_REF = 64
MAX_EVENT_NAME = 64
MAX_BROADCAST_PAYLOAD = 16 * 1024
MAX_BATCH = 100
#: Contacts in one ``POST .../contacts/import``.
MAX_IMPORT = 1000

STATUSES = ("online", "away", "busy", "in_call")


# ---- client frames ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int


@dataclass(frozen=True, slots=True)
class Refresh:
    token: str


@dataclass(frozen=True, slots=True)
class Typing:
    contact_id: str
    is_typing: bool


@dataclass(frozen=True, slots=True)
class PresenceUpdate:
    status: str | None
    viewing: str | None
    viewing_given: bool
    #: the call the user is in (with ``status`` ``in_call``); any ``status`` sets it
    call: str | None = None


@dataclass(frozen=True, slots=True)
class Broadcast:
    event: str
    payload: dict[str, Any]
    echo: bool
    #: a user id: only that member's connections receive it (call signalling)
    to: str | None = None


Body = Ping | Ack | Refresh | Mutation | Typing | PresenceUpdate | Broadcast


@dataclass(frozen=True, slots=True)
class Frame:
    """One validated client frame."""

    type: str
    ref: str | None
    body: Body


def _create_contact(data: dict[str, Any]) -> CreateContact:
    f = contact_fields(data, partial=False)
    return CreateContact(
        name=f["name"],
        email=f["email"],
        phone=f["phone"],
        company=f["company"],
        tags=tuple(f["tags"]),
        fields=f["fields"],
    )


def import_contacts(data: Any) -> ImportContacts:
    """``{"contacts": [...]}`` of ``POST .../contacts/import``: 1-:data:`MAX_IMPORT`
    contacts, each valid as for ``contact_created``; the first invalid one is named by
    its index (``details.index``, and ``details.field`` within it)."""
    if not isinstance(data, dict):
        raise invalid("body", "must be a JSON object")
    only(data, ("contacts",), "body")
    items = required(data, "contacts")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_IMPORT:
        raise invalid("contacts", f"must be a list of 1-{MAX_IMPORT} contacts")
    contacts: list[CreateContact] = []
    for index, item in enumerate(items):
        try:
            check_json_value(item, "")
            contacts.append(_create_contact(as_object(item, "contact")))
        except Problem as problem:
            details = problem.details if isinstance(problem.details, dict) else {}
            raise Problem(problem.code, f"contacts[{index}]: {problem.message}",
                          details={**details, "index": index}) from None
    return ImportContacts(tuple(contacts))


def _update_contact(data: dict[str, Any]) -> UpdateContact:
    only(data, ("id", "changes", "base_version"))
    cid = entity_id(required(data, "id"))
    changes = contact_fields(as_object(required(data, "changes"), "changes"), partial=True)
    if not changes:
        raise invalid("changes", "must change at least one field")
    base = data.get("base_version")
    return UpdateContact(
        cid, changes, None if base is None else integer(base, "base_version", 1)
    )


def _delete_contact(data: dict[str, Any]) -> DeleteContact:
    only(data, ("id",))
    return DeleteContact(entity_id(required(data, "id")))


def _add_note(data: dict[str, Any]) -> AddNote:
    only(data, ("contact_id", "body"))
    cid = entity_id(required(data, "contact_id"), "contact_id")
    return AddNote(cid, text(required(data, "body"), "body", 1, MAX_NOTE))


def _typing(data: dict[str, Any]) -> Typing:
    only(data, ("contact_id", "is_typing"))
    cid = entity_id(required(data, "contact_id"), "contact_id")
    return Typing(cid, boolean(data.get("is_typing", True), "is_typing"))


def _presence_update(data: dict[str, Any]) -> PresenceUpdate:
    only(data, ("status", "viewing", "call"))
    status = data.get("status")
    if status is not None and status not in STATUSES:
        raise invalid("status", "must be one of " + ", ".join(STATUSES))
    viewing = data.get("viewing")
    if viewing is not None:
        viewing = entity_id(viewing, "viewing")
    if status is None and "viewing" not in data:
        raise invalid("status", "give status and/or viewing")
    call = data.get("call")
    if call is not None:
        if status != "in_call":
            raise invalid("call", "only with status in_call")
        call = entity_id(call, "call")
    return PresenceUpdate(status, viewing, "viewing" in data, call)


def _user_id(value: Any, name: str) -> str:
    """A user id as tokens carry them: 1-64 characters, no control characters."""
    if (not isinstance(value, str) or not 1 <= len(value) <= MAX_ID
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)):
        raise invalid(name, f"must be a user id of 1-{MAX_ID} characters, no control characters")
    return value


def _broadcast(data: dict[str, Any]) -> Broadcast:
    only(data, ("event", "payload", "echo", "to"))
    event = text(required(data, "event"), "event", 1, MAX_EVENT_NAME)
    payload = as_object(data.get("payload", {}), "payload")
    check_json_value(payload, "payload")
    if len(orjson.dumps(payload)) > MAX_BROADCAST_PAYLOAD:
        raise invalid("payload", f"must be at most {MAX_BROADCAST_PAYLOAD} bytes")
    to = data.get("to")
    return Broadcast(event, payload, boolean(data.get("echo", False), "echo"),
                     None if to is None else _user_id(to, "to"))


def _ping(data: dict[str, Any]) -> Ping:
    only(data, ())
    return Ping()


def _ack(data: dict[str, Any]) -> Ack:
    only(data, ("seq",))
    return Ack(integer(required(data, "seq"), "seq"))


def _refresh(data: dict[str, Any]) -> Refresh:
    only(data, ("token",))
    return Refresh(text(required(data, "token"), "token", 1, MAX_TOKEN))


VALIDATORS: dict[str, Any] = {
    "ping": _ping,
    "ack": _ack,
    "refresh": _refresh,
    "contact_created": _create_contact,
    "contact_updated": _update_contact,
    "contact_deleted": _delete_contact,
    "note_added": _add_note,
    "typing": _typing,
    "presence_update": _presence_update,
    "broadcast": _broadcast,
}


def validate(msg_type: str, data: dict[str, Any]) -> Body:
    """Validate the ``data`` of a frame of ``msg_type`` (shared with the REST API)."""
    result: Body = VALIDATORS[msg_type](data)
    return result


# ---- parsing -----------------------------------------------------------------------------


class FrameError(Problem):
    """A frame that could not be handled, with the ``ref`` to echo when one was valid."""

    def __init__(self, problem: Problem, ref: str | None = None) -> None:
        super().__init__(problem.code, problem.message, details=problem.details)
        self.ref = ref


def parse_object(obj: Any) -> Frame:
    """Validate one decoded client frame object."""
    if not isinstance(obj, dict):
        raise FrameError(Problem(Error.INVALID_MESSAGE, "a frame must be a JSON object"))
    ref = obj.get("ref")
    if ref is not None and (
        not isinstance(ref, str) or not 1 <= len(ref) <= MAX_REF or "\x00" in ref
    ):
        raise FrameError(Problem(
            Error.INVALID_MESSAGE, f"ref must be a string of 1-{MAX_REF} characters, no NUL"
        ))
    for key in obj:
        if key not in ("type", "ref", "data"):
            raise FrameError(
                Problem(Error.INVALID_MESSAGE, f"unknown top-level key {key[:64]!r}"), ref
            )
    msg_type = obj.get("type")
    if not isinstance(msg_type, str):
        raise FrameError(Problem(Error.INVALID_MESSAGE, "type must be a string"), ref)
    if msg_type not in VALIDATORS:
        raise FrameError(
            Problem(Error.UNKNOWN_TYPE, f"unknown message type {msg_type[:64]!r}"), ref
        )
    data = obj.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrameError(Problem(Error.INVALID_MESSAGE, "data must be an object"), ref)
    try:
        check_json_value(data, "")  # field names in details are relative to data
        return Frame(msg_type, ref, validate(msg_type, data))
    except Problem as problem:
        raise FrameError(problem, ref) from None


def parse(raw: str | bytes, *, batch: bool = False) -> list[Frame | FrameError]:
    """Parse the text of one client WebSocket frame.

    Returns the frames it holds in order, each either valid or the error to answer it
    with; a batch client may send a JSON array of frame objects. Never raises.
    """
    try:
        obj = loads(raw)
    except Problem as problem:
        return [FrameError(problem)]
    items = obj if batch and isinstance(obj, list) else [obj]
    if batch and not 1 <= len(items) <= MAX_BATCH:
        return [FrameError(Problem(Error.INVALID_MESSAGE, f"a batch holds 1-{MAX_BATCH} frames"))]
    out: list[Frame | FrameError] = []
    for item in items:
        try:
            out.append(parse_object(item))
        except FrameError as err:
            out.append(err)
    return out


# ---- server frames -----------------------------------------------------------------------


def error_frame(problem: Problem, ref: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "error", "code": problem.code.value, "message": problem.message
    }
    if ref is not None:
        frame["ref"] = ref
    if problem.details is not None:
        frame["details"] = problem.details
    if problem.retry_after is not None:
        frame["retry_after"] = problem.retry_after
    return frame


def ack_frame(ref: str | None, seq: int | None = None, data: Any = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "ack", "ref": ref}
    if seq is not None:
        frame["seq"] = seq
    if data is not None:
        frame["data"] = data
    return frame


def pong_frame(ref: str | None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "pong", "ts": now_iso()}
    if ref is not None:
        frame["ref"] = ref
    return frame
