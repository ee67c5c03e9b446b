"""The codes table: every close code says whether a client should reconnect."""

from __future__ import annotations

from livespace.codes import CLOSE_CODES, HTTP_STATUS, Close, Error, should_reconnect


def test_every_close_code_says_whether_to_reconnect() -> None:
    assert set(CLOSE_CODES) == {int(code) for code in Close}
    assert [c for c in Close if not should_reconnect(c)] == [
        Close.UNSUPPORTED, Close.MALFORMED, Close.UNAUTHORIZED, Close.FORBIDDEN]
    assert [c for c in Close if should_reconnect(c)] == [
        Close.NORMAL, Close.GOING_AWAY, Close.TOO_BIG, Close.INTERNAL, Close.RESTARTING,
        Close.POLICY,
        Close.TOO_SLOW, Close.TOKEN_EXPIRED,
    ]
    assert should_reconnect(1006)  # no close frame: the network
    assert should_reconnect(4999)  # a code this client does not know: with backoff


def test_every_error_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(Error)
