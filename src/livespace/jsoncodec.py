"""JSON text in and out (orjson), as every socket frame and request body is read and sent.

Pure. :func:`loads` reads a client's text, refusing what is not JSON with
``invalid_json``; a number beyond double range is read again so that validation can name
its field. :func:`dumpb` is what goes on the wire.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from livespace.codes import Error, Problem


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


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def dumpb(obj: Any) -> bytes:
    """JSON as UTF-8 bytes: what goes on the wire."""
    return orjson.dumps(obj)
