"""Client frames in, server frames out: parsing, validation and encoding.

Pure: no I/O, no asyncio. :func:`parse` turns the text of one WebSocket frame into a
:class:`Frame` (or a list of them, for batch clients) or raises :class:`Problem`;
the ``encode_*`` functions build the JSON text of server frames.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from livespace.codes import Error, Problem
from livespace.commands import (
    CONTACT_FIELDS,
    AddNote,
    CreateContact,
    DeleteContact,
    Mutation,
    UpdateContact,
)
from livespace.times import now_iso

# ---- limits (see docs/security.md) -------------------------------------------------------

MAX_REF = 64
MAX_ID = 64
MAX_NAME = 200
MAX_EMAIL = 254
MAX_PHONE = 50
MAX_COMPANY = 200
MAX_TAGS = 50
MAX_TAG = 50
MAX_FIELDS = 50
MAX_FIELD_KEY = 64
MAX_FIELD_VALUE = 2000
MAX_NOTE = 10_000
MAX_EVENT_NAME = 64
MAX_BROADCAST_PAYLOAD = 16 * 1024
MAX_DEPTH = 16
MAX_BATCH = 100
MAX_TOKEN = 8192
MAX_SAFE_INT = 2**53 - 1

STATUSES = ("online", "away", "busy", "in_call")

_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")


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


@dataclass(frozen=True, slots=True)
class Broadcast:
    event: str
    payload: dict[str, Any]
    echo: bool


Body = Ping | Ack | Refresh | Mutation | Typing | PresenceUpdate | Broadcast


@dataclass(frozen=True, slots=True)
class Frame:
    """One validated client frame."""

    type: str
    ref: str | None
    body: Body


# ---- validation helpers ----------------------------------------------------------------


def invalid(field_name: str, reason: str) -> Problem:
    return Problem(
        Error.VALIDATION_FAILED,
        f"{field_name}: {reason}",
        details={"field": field_name, "reason": reason},
    )


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(name, "must be an object")
    return value


def _only(data: dict[str, Any], allowed: tuple[str, ...], where: str = "data") -> None:
    for key in data:
        if key not in allowed:
            raise invalid(f"{where}.{key}", "unknown field")


def _required(data: dict[str, Any], key: str) -> Any:
    if key not in data or data[key] is None:
        raise invalid(key, "required")
    return data[key]


def text(value: Any, name: str, lo: int, hi: int) -> str:
    if not isinstance(value, str):
        raise invalid(name, "must be a string")
    stripped = value.strip()
    if len(stripped) < lo:
        raise invalid(name, f"must be at least {lo} characters" if lo > 1 else "must not be empty")
    if len(value) > hi:
        raise invalid(name, f"must be at most {hi} characters")
    if "\x00" in value:
        raise invalid(name, "must not contain NUL")
    return stripped if lo > 0 else value


def entity_id(value: Any, name: str = "id") -> str:
    """An opaque id: 1-64 characters of ``[A-Za-z0-9_.:@-]``; else validation_failed."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise invalid(name, f"must be an id of 1-{MAX_ID} characters [A-Za-z0-9_.:@-]")
    return value


def _optional_text(data: dict[str, Any], key: str, hi: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(key, "must be a string")
    if len(value) > hi:
        raise invalid(key, f"must be at most {hi} characters")
    if "\x00" in value:
        raise invalid(key, "must not contain NUL")
    return value.strip() or None


def _email(data: dict[str, Any]) -> str | None:
    value = _optional_text(data, "email", MAX_EMAIL)
    if value is not None and not _EMAIL_RE.match(value):
        raise invalid("email", "must be an email address")
    return value


def _tags(data: dict[str, Any]) -> tuple[str, ...]:
    value = data.get("tags")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid("tags", "must be a list of strings")
    if len(value) > MAX_TAGS:
        raise invalid("tags", f"at most {MAX_TAGS} tags")
    tags: list[str] = []
    for i, tag in enumerate(value):
        tags.append(text(tag, f"tags[{i}]", 1, MAX_TAG))
    return tuple(dict.fromkeys(tags))


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    value = data.get("fields")
    if value is None:
        return {}
    obj = _object(value, "fields")
    if len(obj) > MAX_FIELDS:
        raise invalid("fields", f"at most {MAX_FIELDS} custom fields")
    out: dict[str, Any] = {}
    for key, item in obj.items():
        if not key or len(key) > MAX_FIELD_KEY or "\x00" in key:
            raise invalid("fields", f"keys must be 1-{MAX_FIELD_KEY} characters, without NUL")
        if isinstance(item, str):
            if len(item) > MAX_FIELD_VALUE:
                raise invalid(f"fields.{key}", f"must be at most {MAX_FIELD_VALUE} characters")
            if "\x00" in item:
                raise invalid(f"fields.{key}", "must not contain NUL")
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int | float):
            _number(item, f"fields.{key}")
        else:
            raise invalid(f"fields.{key}", "must be a string, number, boolean or null")
        out[key] = item
    return out


def _number(value: int | float, name: str) -> None:
    """Numbers are finite and within +/-(2**53-1), so that every client (JavaScript's
    doubles included) reads back exactly the number it was given."""
    if isinstance(value, float) and not math.isfinite(value):
        raise invalid(name, "must be a finite number")
    if abs(value) > MAX_SAFE_INT:
        raise invalid(name, "must be within +/-(2**53-1)")


def _int(value: Any, name: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, "must be an integer")
    if value < lo or value > MAX_SAFE_INT:
        raise invalid(name, f"must be an integer from {lo} to 2**53-1")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(name, "must be true or false")
    return value


def check_json_value(value: Any, name: str, depth: int = 0) -> None:
    """Bound nesting depth and refuse non-finite or oversized numbers anywhere in ``value``."""
    if depth > MAX_DEPTH:
        raise invalid(name, f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, dict):
        for key, item in value.items():
            check_json_value(item, f"{name}.{key}" if name else key, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_json_value(item, f"{name}[{i}]", depth + 1)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _number(value, name)


# ---- per-type validators ---------------------------------------------------------------


def contact_fields(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """Validate contact fields; with ``partial`` only the keys given (for updates)."""
    _only(data, CONTACT_FIELDS, "changes" if partial else "data")
    out: dict[str, Any] = {}
    if not partial or "name" in data:
        out["name"] = text(_required(data, "name"), "name", 1, MAX_NAME)
    if not partial or "email" in data:
        out["email"] = _email(data)
    if not partial or "phone" in data:
        out["phone"] = _optional_text(data, "phone", MAX_PHONE)
    if not partial or "company" in data:
        out["company"] = _optional_text(data, "company", MAX_COMPANY)
    if not partial or "tags" in data:
        out["tags"] = list(_tags(data))
    if not partial or "fields" in data:
        out["fields"] = _fields(data)
    return out


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


def _update_contact(data: dict[str, Any]) -> UpdateContact:
    _only(data, ("id", "changes", "base_version"))
    cid = entity_id(_required(data, "id"))
    changes = contact_fields(_object(_required(data, "changes"), "changes"), partial=True)
    if not changes:
        raise invalid("changes", "must change at least one field")
    base = data.get("base_version")
    return UpdateContact(
        cid, changes, None if base is None else _int(base, "base_version", 1)
    )


def _delete_contact(data: dict[str, Any]) -> DeleteContact:
    _only(data, ("id",))
    return DeleteContact(entity_id(_required(data, "id")))


def _add_note(data: dict[str, Any]) -> AddNote:
    _only(data, ("contact_id", "body"))
    cid = entity_id(_required(data, "contact_id"), "contact_id")
    return AddNote(cid, text(_required(data, "body"), "body", 1, MAX_NOTE))


def _typing(data: dict[str, Any]) -> Typing:
    _only(data, ("contact_id", "is_typing"))
    cid = entity_id(_required(data, "contact_id"), "contact_id")
    return Typing(cid, _bool(data.get("is_typing", True), "is_typing"))


def _presence_update(data: dict[str, Any]) -> PresenceUpdate:
    _only(data, ("status", "viewing"))
    status = data.get("status")
    if status is not None and status not in STATUSES:
        raise invalid("status", "must be one of " + ", ".join(STATUSES))
    viewing = data.get("viewing")
    if viewing is not None:
        viewing = entity_id(viewing, "viewing")
    if status is None and "viewing" not in data:
        raise invalid("status", "give status and/or viewing")
    return PresenceUpdate(status, viewing, "viewing" in data)


def _broadcast(data: dict[str, Any]) -> Broadcast:
    _only(data, ("event", "payload", "echo"))
    event = text(_required(data, "event"), "event", 1, MAX_EVENT_NAME)
    payload = _object(data.get("payload", {}), "payload")
    check_json_value(payload, "payload")
    if len(orjson.dumps(payload)) > MAX_BROADCAST_PAYLOAD:
        raise invalid("payload", f"must be at most {MAX_BROADCAST_PAYLOAD} bytes")
    return Broadcast(event, payload, _bool(data.get("echo", False), "echo"))


def _ping(data: dict[str, Any]) -> Ping:
    _only(data, ())
    return Ping()


def _ack(data: dict[str, Any]) -> Ack:
    _only(data, ("seq",))
    return Ack(_int(_required(data, "seq"), "seq"))


def _refresh(data: dict[str, Any]) -> Refresh:
    _only(data, ("token",))
    return Refresh(text(_required(data, "token"), "token", 1, MAX_TOKEN))


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


def loads(raw: str | bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "infinity" in exc.msg:
            obj = _loads_out_of_range(raw)
            if obj is not _UNREADABLE:
                return obj
        raise Problem(Error.INVALID_JSON, f"not valid JSON: {exc.msg}") from None


_UNREADABLE = object()
_HUGE = 10**30  # stands in for an integer literal too long to be worth converting


def _huge_int(literal: str) -> int:
    if len(literal) <= 30:
        return int(literal)
    return -_HUGE if literal.startswith("-") else _HUGE


def _no_constant(literal: str) -> Any:
    raise ValueError(f"{literal} is not JSON")


def _loads_out_of_range(raw: str | bytes) -> Any:
    """orjson refuses a number beyond double range (``1e400``, 400 digits) as invalid JSON.

    Such a frame is valid JSON, so it is read again here, the number kept out of range,
    for validation to name its field and echo the frame's ``ref``. Anything else orjson
    would refuse (lone surrogates, NaN) still makes the frame unreadable.
    """
    try:
        obj = json.loads(raw, parse_int=_huge_int, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return _UNREADABLE
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode()
                except UnicodeEncodeError:
                    return _UNREADABLE
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return obj


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


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def dumpb(obj: Any) -> bytes:
    """JSON as UTF-8 bytes: what goes on the wire."""
    return orjson.dumps(obj)


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
