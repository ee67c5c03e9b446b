"""JWT -> :class:`Principal`: who is asking, checked against the configured key.

The rules (DESIGN.md section 2): one configured algorithm (HS* with a shared secret,
RS*/ES* with a PEM public key or a JWKS URL), ``exp`` required and enforced (leeway only
when ``JWT_LEEWAY`` is set), ``aud``/``iss`` checked when configured, user id from the
first of ``user_id``, ``sub``, ``id``. Every failure is an :class:`AuthError` whose reason
never contains the token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from livespace.config import ConfigError, Settings
from livespace.validation import MAX_TOKEN
from livespace.verified import VerifiedTokens

log = logging.getLogger(__name__)

MAX_USER_ID = 64
SUBPROTOCOL = "livespace.v1"
BEARER_PREFIX = "bearer."

JWKS_TTL_S = 300.0  # keys are reused this long
JWKS_MIN_REFETCH_S = 30.0  # an unknown kid refetches at most this often
JWKS_RETRY_S = 5.0  # with no key at all, a failed fetch is retried this often
JWKS_TIMEOUT_S = 5.0
JWKS_MAX_BYTES = 256 * 1024

_USER_ID_CLAIMS = ("user_id", "sub", "id")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TTL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class AuthError(Exception):
    """A token that does not authenticate anyone; ``str(err)`` is a short reason."""


@dataclass(frozen=True)
class Principal:
    """The user a verified token speaks for."""

    user_id: str
    email: str | None
    name: str | None
    exp: float | None
    claims: dict[str, Any]


def principal_from(claims: Mapping[str, Any]) -> Principal:
    """Principal of already verified ``claims``; AuthError without a usable user id."""
    user_id = _user_id(claims)
    email = claims.get("email")
    name = claims.get("name") or claims.get("username")
    exp = claims.get("exp")
    return Principal(
        user_id=user_id,
        email=email if isinstance(email, str) and email else None,
        name=name if isinstance(name, str) and name else None,
        exp=float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
        claims=dict(claims),
    )


def _user_id(claims: Mapping[str, Any]) -> str:
    for claim in _USER_ID_CLAIMS:
        value = claims.get(claim)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise AuthError(f"claim {claim!r} is not a valid user id")
        user_id = str(value)
        if len(user_id) > MAX_USER_ID or _CONTROL.search(user_id):
            raise AuthError(f"claim {claim!r} is not a valid user id")
        return user_id
    raise AuthError("token has no user id (user_id, sub or id)")


class TokenVerifier:
    """Verifies tokens against :class:`Settings` (call ``settings.with_secret()`` first).

    Construction checks the key material and raises :class:`ConfigError` when it cannot
    work; :meth:`verify` only ever raises :class:`AuthError`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.algorithm = settings.jwt_algorithm
        self._key: Any = None
        self.jwks: JwksKeys | None = None
        #: verified tokens (by hash) until their exp: a reconnect is not verified again
        self.verified: VerifiedTokens[Principal] = VerifiedTokens(leeway=settings.jwt_leeway)
        if self.algorithm.startswith("HS"):
            if not settings.jwt_secret:
                raise ConfigError(
                    f"{self.algorithm} needs JWT_SECRET (or settings.with_secret())"
                )
            self._key = settings.jwt_secret.encode()
        elif settings.jwt_public_key:
            self._key = _public_key(self.algorithm, settings.jwt_public_key)
        elif settings.jwt_jwks_url:
            self.jwks = JwksKeys(settings.jwt_jwks_url, self.algorithm)
        else:
            raise ConfigError(
                f"JWT_ALGORITHM={self.algorithm} needs JWT_PUBLIC_KEY or JWT_JWKS_URL"
            )

    async def verify(self, token: str) -> Principal:
        """The principal of ``token``, or AuthError saying why not."""
        if not isinstance(token, str) or not token:
            raise AuthError("missing token")
        if len(token) > MAX_TOKEN:
            raise AuthError("token too long")
        known = self.verified.get(token)
        if known is not None:
            return known
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise AuthError("unsigned token (alg none)")
        if alg != self.algorithm:
            raise AuthError(f"unexpected algorithm {alg[:16]!r}")
        key = self._key
        if self.jwks is not None:
            kid = header.get("kid")
            if kid is not None and not isinstance(kid, str):
                raise AuthError("malformed token (kid)")
            key = await self.jwks.key_for(kid)
        claims = self._decode(token, key)
        principal = principal_from(claims)
        self.verified.put(token, principal, principal.exp)
        return principal

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        s = self.settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway,
                options={
                    "require": ["exp"],
                    "verify_aud": s.jwt_audience is not None,
                    "verify_sub": False,  # an int sub is a user id too
                    "verify_jti": False,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.MissingRequiredClaimError as err:
            raise AuthError(f"token has no {err.claim!r} claim") from None
        except jwt.InvalidAudienceError:
            raise AuthError("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad signature") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token not yet valid") from None
        except jwt.PyJWTError:
            raise AuthError("invalid token") from None
        except (ValueError, TypeError):  # a key that does not fit the token's shape
            raise AuthError("invalid token") from None
        return claims

    def mint(
        self,
        user_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        ttl_s: float = 3600,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A token this verifier accepts (HS* only): for ``livespace token`` and tests.

        Sets ``sub``, ``user_id``, ``iat``, ``exp`` and ``email``/``name`` when given;
        ``extra`` claims are added last (they may override those).
        """
        if not self.algorithm.startswith("HS"):
            raise ConfigError(
                f"tokens can only be minted with an HS* algorithm; JWT_ALGORITHM={self.algorithm}"
            )
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id,
            "user_id": user_id,
            "iat": now,
            "exp": now + int(ttl_s),
        }
        if email is not None:
            claims["email"] = email
        if name is not None:
            claims["name"] = name
        if self.settings.jwt_audience is not None:
            claims["aud"] = self.settings.jwt_audience
        if self.settings.jwt_issuer is not None:
            claims["iss"] = self.settings.jwt_issuer
        claims.update(extra or {})
        return jwt.encode(claims, self._key, algorithm=self.algorithm)


def _public_key(algorithm: str, pem: str) -> Any:
    text = pem.strip().replace("\\n", "\n")  # env files often carry the newlines escaped
    try:
        return jwt.get_algorithm_by_name(algorithm).prepare_key(text)
    except (jwt.PyJWTError, ValueError, TypeError) as err:
        raise ConfigError(
            f"JWT_PUBLIC_KEY is not a PEM public key usable with {algorithm}: {err}"
        ) from None


class JwksKeys:
    """Signing keys fetched from a JWKS URL, cached, picked by ``kid``.

    Keys are reused for :data:`JWKS_TTL_S`; an unknown ``kid`` refetches once, at most
    every :data:`JWKS_MIN_REFETCH_S` (failed fetches count). When a refetch fails the
    keys already known stay in use. ``clock`` (monotonic seconds) is replaceable in tests.
    """

    def __init__(
        self, url: str, algorithm: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.url = url
        self.algorithm = algorithm
        self.clock = clock
        self.fetches = 0  # attempts so far, for metrics and tests
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")  # last successful fetch (monotonic)
        self._tried_at = float("-inf")  # last attempt, successful or not
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        if self.clock() - self._fetched_at > JWKS_TTL_S:
            await self._refresh(min_interval=JWKS_MIN_REFETCH_S if self._keys else JWKS_RETRY_S)
        key = self._lookup(kid)
        if key is None:
            await self._refresh(min_interval=JWKS_MIN_REFETCH_S)
            key = self._lookup(kid)
        if key is None:
            raise AuthError("unknown signing key" if self._keys else "signing keys unavailable")
        return key

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is None and len(self._keys) == 1 and (kid is None or None in self._keys):
            key = next(iter(self._keys.values()))
        return key

    async def _refresh(self, *, min_interval: float) -> None:
        tried = self._tried_at
        async with self._lock:
            if self._tried_at != tried:
                return  # another caller fetched while we waited
            if self.clock() - self._tried_at < min_interval:
                return
            self._tried_at = self.clock()
            self.fetches += 1
            try:
                async with asyncio.timeout(JWKS_TIMEOUT_S):
                    body = await self._fetch()
                keys = self._parse(body)
            except (httpx.HTTPError, TimeoutError, ValueError) as err:
                reason = str(err) or type(err).__name__
                log.warning("JWKS fetch from %s failed: %s", self.url, reason)
                return
            self._keys = keys
            self._fetched_at = self.clock()

    async def _fetch(self) -> bytes:
        async with (
            httpx.AsyncClient(timeout=JWKS_TIMEOUT_S, follow_redirects=True) as client,
            client.stream("GET", self.url, headers={"accept": "application/json"}) as resp,
        ):
            resp.raise_for_status()
            declared = resp.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > JWKS_MAX_BYTES:
                raise ValueError(f"JWKS response larger than {JWKS_MAX_BYTES} bytes")
            body = bytearray()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise ValueError(f"JWKS response larger than {JWKS_MAX_BYTES} bytes")
            return bytes(body)

    def _parse(self, body: bytes) -> dict[str | None, jwt.PyJWK]:
        data = json.loads(body)
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError("JWKS response has no 'keys' list")
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            if entry.get("alg", self.algorithm) != self.algorithm:
                continue
            kid = entry.get("kid")
            if kid is not None and not isinstance(kid, str):
                continue
            try:
                key = jwt.PyJWK(entry, algorithm=self.algorithm)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # a key of another type or a broken one: not ours
            keys.setdefault(kid, key)
        if not keys:
            raise ValueError(f"JWKS response has no {self.algorithm} signing key")
        return keys


def token_from(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token a request carries; first found wins (DESIGN.md section 2).

    ``Authorization: Bearer <jwt>``, then a ``bearer.<jwt>`` entry of
    ``sec-websocket-protocol``, then the ``token`` query parameter. Header names are
    lower-case (ASGI style).
    """
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for entry in _subprotocols(headers):
        if entry.lower().startswith(BEARER_PREFIX) and len(entry) > len(BEARER_PREFIX):
            return entry[len(BEARER_PREFIX) :]
    token = query.get("token")
    return token or None


def wants_subprotocol(headers: Mapping[str, str]) -> str | None:
    """``"livespace.v1"`` when the client offered it (the server must then select it)."""
    return SUBPROTOCOL if SUBPROTOCOL in _subprotocols(headers) else None


def _subprotocols(headers: Mapping[str, str]) -> list[str]:
    raw = headers.get("sec-websocket-protocol") or ""
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_ttl(raw: str) -> int:
    """Seconds in ``"45s"``, ``"30m"``, ``"1h"``, ``"2d"`` or ``"3600"``; ValueError if not."""
    match = _TTL.match(raw)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"invalid duration {raw!r}: use e.g. 45s, 30m, 1h, 2d or 3600")
    return int(match.group(1)) * _TTL_UNITS[match.group(2).lower()]


__all__ = [
    "AuthError",
    "JwksKeys",
    "Principal",
    "TokenVerifier",
    "parse_ttl",
    "principal_from",
    "token_from",
    "wants_subprotocol",
]
