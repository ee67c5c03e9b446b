"""Values checked against livespace's limits, for socket frames and REST bodies alike.

Pure. Each check returns the value as stored (stripped, deduplicated) or raises
:class:`~livespace.codes.Problem` ``validation_failed`` naming the field and the reason.
"""

from __future__ import annotations

import math
import re
from typing import Any

from livespace.codes import Error, Problem
from livespace.commands import CONTACT_FIELDS

# ---- limits (see docs/security.md) ----------------------------------------------------

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
MAX_DEPTH = 16
MAX_TOKEN = 8 * 1024  # characters; a real token is far smaller
MAX_SAFE_INT = 2**53 - 1

_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")


def invalid(field_name: str, reason: str) -> Problem:
    return Problem(
        Error.VALIDATION_FAILED,
        f"{field_name}: {reason}",
        details={"field": field_name, "reason": reason},
    )


def as_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(name, "must be an object")
    return value


def only(data: dict[str, Any], allowed: tuple[str, ...], where: str = "data") -> None:
    for key in data:
        if key not in allowed:
            raise invalid(f"{where}.{key}", "unknown field")


def required(data: dict[str, Any], key: str) -> Any:
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


def optional_text(data: dict[str, Any], key: str, hi: int) -> str | None:
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
    value = optional_text(data, "email", MAX_EMAIL)
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
    obj = as_object(value, "fields")
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


def integer(value: Any, name: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, "must be an integer")
    if value < lo or value > MAX_SAFE_INT:
        raise invalid(name, f"must be an integer from {lo} to 2**53-1")
    return value


def boolean(value: Any, name: str) -> bool:
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


def contact_fields(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """Validate contact fields; with ``partial`` only the keys given (for updates)."""
    only(data, CONTACT_FIELDS, "changes" if partial else "data")
    out: dict[str, Any] = {}
    if not partial or "name" in data:
        out["name"] = text(required(data, "name"), "name", 1, MAX_NAME)
    if not partial or "email" in data:
        out["email"] = _email(data)
    if not partial or "phone" in data:
        out["phone"] = optional_text(data, "phone", MAX_PHONE)
    if not partial or "company" in data:
        out["company"] = optional_text(data, "company", MAX_COMPANY)
    if not partial or "tags" in data:
        out["tags"] = list(_tags(data))
    if not partial or "fields" in data:
        out["fields"] = _fields(data)
    return out
