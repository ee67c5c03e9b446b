"""auth.py against real keys and a real JWKS server; logs.py keeps tokens out of logs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

from livespace.auth import (
    AuthError,
    Principal,
    TokenVerifier,
    parse_ttl,
    token_from,
    wants_subprotocol,
)
from livespace.config import ConfigError, Settings
from livespace.logs import UVICORN_LOG_CONFIG, LineFormatter, RedactTokens, redact

SECRET = "s" * 48


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "u1", "iat": now, "exp": now + 600, **extra}


def _hs(settings: Settings | None = None, **kw: Any) -> TokenVerifier:
    return TokenVerifier(settings or Settings(jwt_secret=SECRET, **kw))


async def _rejected(verifier: TokenVerifier, token: str, reason: str) -> None:
    with pytest.raises(AuthError) as info:
        await verifier.verify(token)
    assert reason in str(info.value)
    assert not token or token not in str(info.value)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_keys() -> list[ec.EllipticCurvePrivateKey]:
    return [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# --- HS256 -----------------------------------------------------------------------------


async def test_hs256_token_verifies() -> None:
    verifier = _hs()
    token = verifier.mint("alice", email="a@example.com", name="Alice", ttl_s=60)
    principal = await verifier.verify(token)
    assert isinstance(principal, Principal)
    assert (principal.user_id, principal.email, principal.name) == (
        "alice", "a@example.com", "Alice"
    )
    assert principal.exp is not None and principal.exp > time.time()
    assert principal.claims["sub"] == "alice"


async def test_wrong_secret_rejected() -> None:
    token = jwt.encode(_claims(), "t" * 48, algorithm="HS256")
    await _rejected(_hs(), token, "bad signature")


async def test_malformed_and_oversized_rejected() -> None:
    verifier = _hs()
    await _rejected(verifier, "not-a-jwt", "malformed")
    await _rejected(verifier, "", "missing")
    big = jwt.encode(_claims(pad="x" * 9000), SECRET, algorithm="HS256")
    await _rejected(verifier, big, "too long")


async def test_alg_none_rejected() -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    await _rejected(_hs(), f"{header}.{payload}.", "alg none")
    header = _b64(json.dumps({"alg": "NONE"}).encode())
    await _rejected(_hs(), f"{header}.{payload}.", "alg none")


async def test_other_hs_algorithm_rejected() -> None:
    token = jwt.encode(_claims(), SECRET + "x" * 20, algorithm="HS512")
    await _rejected(_hs(), token, "unexpected algorithm")


async def test_expired_rejected_and_leeway_honoured() -> None:
    token = jwt.encode(_claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    await _rejected(_hs(), token, "expired")
    principal = await _hs(jwt_leeway=30.0).verify(token)
    assert principal.user_id == "u1"


async def test_missing_exp_rejected() -> None:
    claims = _claims()
    del claims["exp"]
    await _rejected(_hs(), jwt.encode(claims, SECRET, algorithm="HS256"), "'exp'")


async def test_audience_and_issuer_checked_when_configured() -> None:
    verifier = _hs(jwt_audience="livespace", jwt_issuer="https://idp.example")
    good = _claims(aud="livespace", iss="https://idp.example")
    assert (await verifier.verify(jwt.encode(good, SECRET, algorithm="HS256"))).user_id == "u1"
    wrong_aud = jwt.encode({**good, "aud": "other"}, SECRET, algorithm="HS256")
    await _rejected(verifier, wrong_aud, "audience")
    wrong_iss = jwt.encode({**good, "iss": "https://evil.example"}, SECRET, algorithm="HS256")
    await _rejected(verifier, wrong_iss, "issuer")
    no_aud = jwt.encode({k: v for k, v in good.items() if k != "aud"}, SECRET, algorithm="HS256")
    await _rejected(verifier, no_aud, "'aud'")
    # not configured: an aud in the token is not held against it
    plain = jwt.encode(_claims(aud="anything"), SECRET, algorithm="HS256")
    assert (await _hs().verify(plain)).user_id == "u1"


async def test_mint_carries_configured_audience_and_issuer() -> None:
    verifier = _hs(jwt_audience="livespace", jwt_issuer="me")
    assert (await verifier.verify(verifier.mint("bob"))).user_id == "bob"


async def test_user_id_rules() -> None:
    verifier = _hs()

    async def uid(**claims: Any) -> str:
        now = int(time.time())
        token = jwt.encode({"exp": now + 60, **claims}, SECRET, algorithm="HS256")
        return (await verifier.verify(token)).user_id

    assert await uid(user_id="a", sub="b", id="c") == "a"
    assert await uid(sub="b", id="c") == "b"
    assert await uid(id="c") == "c"
    assert await uid(sub=42) == "42"
    assert await uid(user_id="", sub="b") == "b"
    token = jwt.encode({"exp": int(time.time()) + 60, "email": "x@y"}, SECRET, algorithm="HS256")
    await _rejected(verifier, token, "no user id")
    for bad in ("x" * 65, True, 1.5, ["a"], "a\nb"):
        token = jwt.encode(
            {"exp": int(time.time()) + 60, "sub": bad}, SECRET, algorithm="HS256"
        )
        await _rejected(verifier, token, "not a valid user id")


async def test_name_falls_back_to_username() -> None:
    verifier = _hs()
    token = verifier.mint("u", extra={"username": "uname"})
    assert (await verifier.verify(token)).name == "uname"


def test_hs_verifier_needs_a_secret() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        TokenVerifier(Settings())


# --- RS256 with a PEM key ------------------------------------------------------------


async def test_rs256_with_pem(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = TokenVerifier(Settings(jwt_algorithm="RS256", jwt_public_key=_pem(rsa_key)))
    token = jwt.encode(_claims(sub="carol"), rsa_key, algorithm="RS256")
    assert (await verifier.verify(token)).user_id == "carol"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await _rejected(verifier, jwt.encode(_claims(), other, algorithm="RS256"), "bad signature")


async def test_pem_with_escaped_newlines(rsa_key: rsa.RSAPrivateKey) -> None:
    escaped = _pem(rsa_key).replace("\n", "\\n")
    verifier = TokenVerifier(Settings(jwt_algorithm="RS256", jwt_public_key=escaped))
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256")
    assert (await verifier.verify(token)).user_id == "u1"


def test_bad_pem_refused() -> None:
    with pytest.raises(ConfigError, match="JWT_PUBLIC_KEY"):
        TokenVerifier(Settings(jwt_algorithm="RS256", jwt_public_key="not a key"))


async def test_hs256_token_rejected_by_rs256_verifier(rsa_key: rsa.RSAPrivateKey) -> None:
    """Key confusion: an HMAC signed with the public key's PEM must not pass."""
    pem = _pem(rsa_key)
    verifier = TokenVerifier(Settings(jwt_algorithm="RS256", jwt_public_key=pem))
    for alg in ("HS256", "RS256"):
        header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        payload = _b64(json.dumps(_claims()).encode())
        signing_input = f"{header}.{payload}".encode()
        mac = hmac.new(pem.encode(), signing_input, hashlib.sha256).digest()
        token = f"{header}.{payload}.{_b64(mac)}"
        with pytest.raises(AuthError):
            await verifier.verify(token)


def test_mint_refused_for_asymmetric(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = TokenVerifier(Settings(jwt_algorithm="RS256", jwt_public_key=_pem(rsa_key)))
    with pytest.raises(ConfigError, match="HS"):
        verifier.mint("u")


# --- ES256 with a JWKS URL, served by a real HTTP server ------------------------------


class JwksServer:
    def __init__(self) -> None:
        self.body = b'{"keys": []}'
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def serve(self, *keys: tuple[str, ec.EllipticCurvePrivateKey]) -> None:
        jwks = []
        for kid, key in keys:
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwks.append({**jwk, "kid": kid, "use": "sig", "alg": "ES256"})
        self.body = json.dumps({"keys": jwks}).encode()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _es(kid: str, key: ec.EllipticCurvePrivateKey, **claims: Any) -> str:
    return jwt.encode(_claims(**claims), key, algorithm="ES256", headers={"kid": kid})


def _jwks_verifier(server: JwksServer) -> tuple[TokenVerifier, Clock]:
    verifier = TokenVerifier(Settings(jwt_algorithm="ES256", jwt_jwks_url=server.url))
    assert verifier.jwks is not None
    clock = Clock()
    verifier.jwks.clock = clock
    return verifier, clock


async def test_es256_with_jwks(
    jwks_server: JwksServer, ec_keys: list[ec.EllipticCurvePrivateKey]
) -> None:
    jwks_server.serve(("k1", ec_keys[0]))
    verifier, _ = _jwks_verifier(jwks_server)
    assert (await verifier.verify(_es("k1", ec_keys[0], sub="dan"))).user_id == "dan"
    assert (await verifier.verify(_es("k1", ec_keys[0]))).user_id == "u1"
    assert jwks_server.requests == 1  # cached
    await _rejected(verifier, _es("k1", ec_keys[1]), "bad signature")


async def test_jwks_kid_rotation(
    jwks_server: JwksServer, ec_keys: list[ec.EllipticCurvePrivateKey]
) -> None:
    k1, k2 = ec_keys
    jwks_server.serve(("k1", k1))
    verifier, clock = _jwks_verifier(jwks_server)
    assert (await verifier.verify(_es("k1", k1))).user_id == "u1"
    assert jwks_server.requests == 1

    jwks_server.serve(("k2", k2))  # the issuer rotated
    clock.now += 31
    assert (await verifier.verify(_es("k2", k2))).user_id == "u1"  # unknown kid: refetch
    assert jwks_server.requests == 2

    # an unknown kid right after a fetch does not refetch (at most once every 30 s)
    clock.now += 5
    await _rejected(verifier, _es("k1", k1), "unknown signing key")
    await _rejected(verifier, _es("k3", k1), "unknown signing key")
    assert jwks_server.requests == 2

    # keys are refreshed when the cache is old
    jwks_server.serve(("k1", k1), ("k2", k2))
    clock.now += 301
    assert (await verifier.verify(_es("k1", k1))).user_id == "u1"
    assert jwks_server.requests == 3


async def test_jwks_unknown_kid_refetch_is_rate_limited(
    jwks_server: JwksServer, ec_keys: list[ec.EllipticCurvePrivateKey]
) -> None:
    jwks_server.serve(("k1", ec_keys[0]))
    verifier, clock = _jwks_verifier(jwks_server)
    await verifier.verify(_es("k1", ec_keys[0]))
    clock.now += 31
    for _ in range(5):
        await _rejected(verifier, _es("nope", ec_keys[0]), "unknown signing key")
    assert jwks_server.requests == 2


async def test_jwks_oversized_response_refused(
    jwks_server: JwksServer, ec_keys: list[ec.EllipticCurvePrivateKey]
) -> None:
    jwks_server.body = b'{"keys": [' + b" " * 300_000 + b"]}"
    verifier, _ = _jwks_verifier(jwks_server)
    await _rejected(verifier, _es("k1", ec_keys[0]), "signing keys unavailable")


async def test_jwks_skips_keys_of_other_algorithms(
    jwks_server: JwksServer,
    ec_keys: list[ec.EllipticCurvePrivateKey],
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    jwks_server.serve(("k1", ec_keys[0]))
    ec_only = json.loads(jwks_server.body)["keys"]
    rsa_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())),
               "kid": "r1"}
    jwks_server.body = json.dumps({"keys": [rsa_jwk, *ec_only]}).encode()
    verifier, _ = _jwks_verifier(jwks_server)
    assert (await verifier.verify(_es("k1", ec_keys[0]))).user_id == "u1"
    rs_token = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": "r1"})
    await _rejected(verifier, rs_token, "unexpected algorithm")


# --- where the token comes from ------------------------------------------------------


def test_token_from_precedence() -> None:
    headers = {
        "authorization": "Bearer from-header",
        "sec-websocket-protocol": "livespace.v1, bearer.from-subprotocol",
    }
    query = {"token": "from-query"}
    assert token_from(headers, query) == "from-header"
    del headers["authorization"]
    assert token_from(headers, query) == "from-subprotocol"
    del headers["sec-websocket-protocol"]
    assert token_from(headers, query) == "from-query"
    assert token_from({}, {}) is None
    assert token_from({"authorization": "Basic abc"}, {"token": "q"}) == "q"
    assert token_from({"authorization": "bearer   lower  "}, {}) == "lower"
    assert token_from({"sec-websocket-protocol": "bearer."}, {"token": ""}) is None


def test_wants_subprotocol() -> None:
    assert wants_subprotocol({"sec-websocket-protocol": "bearer.x, livespace.v1"}) == (
        "livespace.v1"
    )
    assert wants_subprotocol({"sec-websocket-protocol": "bearer.x"}) is None
    assert wants_subprotocol({}) is None


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("1h", 3600), ("30m", 1800), ("45s", 45), ("2d", 172800), ("3600", 3600), ("1H", 3600)],
)
def test_parse_ttl(raw: str, seconds: int) -> None:
    assert parse_ttl(raw) == seconds


@pytest.mark.parametrize("raw", ["", "0", "-5", "1w", "h", "1.5h", "1 h m"])
def test_parse_ttl_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_ttl(raw)


# --- tokens never reach the logs ------------------------------------------------------

JWT = jwt.encode(_claims(), SECRET, algorithm="HS256")


def _filtered(msg: str, *args: Any, name: str = "x") -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    assert RedactTokens().filter(record) is True
    return record


def test_redact_masks_every_token_shape() -> None:
    assert redact(f"GET /ws/workspace/w1?since=3&token={JWT}&x=1") == (
        "GET /ws/workspace/w1?since=3&token=***&x=1"
    )
    assert redact("token=opaque-thing more") == "token=*** more"
    assert redact(f"livespace.v1, bearer.{JWT}") == "livespace.v1, bearer.***"
    assert redact("Authorization: Bearer abcdefgh12345678") == "Authorization: Bearer ***"
    assert JWT not in redact(f"claims were {JWT}!")
    assert redact("the bearer of news") == "the bearer of news"


def test_filter_masks_message_and_args() -> None:
    record = _filtered(f"auth failed for {JWT}")
    assert JWT not in record.getMessage()
    # uvicorn.access: '%s - "%s %s HTTP/%s" %d' with the path as an arg
    record = _filtered(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000", "GET", f"/ws/workspace/w?token={JWT}", "1.1", 101,
        name="uvicorn.access",
    )
    line = record.getMessage()
    assert JWT not in line and "token=***" in line and line.endswith(" 101")
    record = _filtered("%(path)s", {"path": f"/x?token={JWT}"})
    assert record.getMessage() == "/x?token=***"
    record = _filtered("%r", {"headers": [("authorization", f"Bearer {JWT}")]})
    assert JWT not in record.getMessage()


def test_formatter_writes_one_line_with_iso_time() -> None:
    record = logging.LogRecord("livespace.x", logging.WARNING, __file__, 1, "a\nb", None, None)
    line = LineFormatter().format(record)
    assert "\n" not in line
    stamp, level, name, message = line.split(" ", 3)
    assert stamp.endswith("Z") and "T" in stamp  # the one stored form (times.iso)
    assert (level, name, message) == ("WARNING", "livespace.x", "a\\nb")


def test_uvicorn_log_config_applies_the_filter() -> None:
    config = UVICORN_LOG_CONFIG
    assert config["filters"]["redact"]["()"] == "livespace.logs.RedactTokens"
    assert "redact" in config["handlers"]["default"]["filters"]
    assert config["loggers"]["uvicorn.access"]["handlers"] == ["default"]
