"""One settings object, read from the environment, defaults filled, checked at start."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MIN_HS_SECRET = 32
ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512")


class ConfigError(ValueError):
    """A setting that makes the server refuse to start; the message says which and why."""


def _number(env: Mapping[str, str], name: str, default: float, lo: float) -> float:
    """``name`` from ``env`` as a number of the default's kind (int or float), at least
    ``lo``; the default when unset or empty."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    kind, what = (int, "an integer") if isinstance(default, int) else (float, "a number")
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
    if not value >= lo:
        raise ConfigError(f"{name} must be >= {lo:g}, got {raw}")
    return value


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


#: Numeric settings read from the environment: field -> (variable, lowest value).
#: Their defaults are the fields' own, written once on :class:`Settings`.
NUMBERS: dict[str, tuple[str, float]] = {
    "jwt_leeway": ("JWT_LEEWAY", 0.0),
    "max_frame": ("LIVESPACE_MAX_FRAME", 1024),
    "rate_limit": ("LIVESPACE_RATE_LIMIT", 1.0),
    "user_rate_limit": ("LIVESPACE_USER_RATE_LIMIT", 1.0),
    "http_rate_limit": ("LIVESPACE_HTTP_RATE_LIMIT", 1.0),
    "auth_failure_rate": ("LIVESPACE_AUTH_FAILURE_RATE", 0.1),
    "max_connections_per_user": ("LIVESPACE_MAX_CONNECTIONS_PER_USER", 1),
    "max_connections_per_workspace": ("LIVESPACE_MAX_CONNECTIONS_PER_WORKSPACE", 1),
    "send_queue_bytes": ("LIVESPACE_SEND_QUEUE_BYTES", 65536),
    "send_queue_frames": ("LIVESPACE_SEND_QUEUE_FRAMES", 16),
    "close_grace_s": ("LIVESPACE_CLOSE_GRACE_S", 0.1),
    "heartbeat_s": ("LIVESPACE_HEARTBEAT_S", 0.5),
    "handshake_timeout_s": ("LIVESPACE_HANDSHAKE_TIMEOUT_S", 0.1),
    "max_header_bytes": ("LIVESPACE_MAX_HEADER_BYTES", 1024),
    "typing_timeout_s": ("LIVESPACE_TYPING_TIMEOUT_S", 0.1),
    "retention_days": ("LIVESPACE_RETENTION_DAYS", 1),
    "cleanup_interval_s": ("LIVESPACE_CLEANUP_INTERVAL_S", 1.0),
    "session_flush_s": ("LIVESPACE_SESSION_FLUSH_S", 0.1),
    "presence_ttl_s": ("LIVESPACE_PRESENCE_TTL_S", 1.0),
    "note_max_bytes": ("LIVESPACE_NOTE_MAX_BYTES", 4096),
    "note_awareness_rate": ("LIVESPACE_NOTE_AWARENESS_RATE", 1.0),
    "note_compact_updates": ("LIVESPACE_NOTE_COMPACT_UPDATES", 2),
}


@dataclass(frozen=True)
class Settings:
    """Everything livespace reads from its environment (names in DESIGN.md section 5)."""

    data_dir: Path = Path(".livespace")
    database_url: str = ""
    redis_url: str | None = None
    redis_prefix: str = "livespace"
    jwt_secret: str | None = None
    jwt_algorithm: str = "HS256"
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway: float = 0.0
    allowed_origins: tuple[str, ...] = ()
    max_frame: int = 64 * 1024
    rate_limit: float = 50.0  # client frames per second per connection (burst: 1 s worth)
    user_rate_limit: float = 100.0  # frames per second per user, all connections together
    http_rate_limit: float = 20.0  # HTTP requests per second per user
    auth_failure_rate: float = 10.0  # failed handshakes per second per client IP (burst 5x)
    max_connections_per_user: int = 20
    max_connections_per_workspace: int = 10_000
    send_queue_bytes: int = 4 * 1024 * 1024  # pending outbound data per connection
    send_queue_frames: int = 10_000
    close_grace_s: float = 10.0  # a closing connection's time to flush before it is cut
    heartbeat_s: float = 25.0
    handshake_timeout_s: float = 10.0  # upgrade request to accepted or refused handshake
    max_header_bytes: int = 16 * 1024  # an upgrade request's headers (431 past it)
    ws_deflate: bool = False  # offer permessage-deflate (costs memory per connection)
    typing_timeout_s: float = 5.0
    retention_days: int = 30
    cleanup_interval_s: float = 3600.0
    session_flush_s: float = 5.0
    log_format: str = "line"  # or "json": one JSON object per line
    presence_ttl_s: float = 10.0  # a dead node's users leave presence within this
    note_max_bytes: int = 1024 * 1024  # stored bytes of one note's document
    note_awareness_rate: float = 20.0  # awareness messages per second per note socket
    note_compact_updates: int = 500  # a note's updates folded into its snapshot past this
    node_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("LIVESPACE_DATA_DIR") or ".livespace")
        defaults = cls()
        data_dir = Path(env.get("LIVESPACE_DATA_DIR") or defaults.data_dir)
        numbers: dict[str, Any] = {
            name: _number(env, variable, getattr(defaults, name), lo)
            for name, (variable, lo) in NUMBERS.items()
        }
        settings = replace(
            defaults,
            **numbers,
            data_dir=data_dir,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'livespace.db'}",
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("LIVESPACE_REDIS_PREFIX") or defaults.redis_prefix,
            jwt_secret=env.get("JWT_SECRET") or None,
            jwt_algorithm=(env.get("JWT_ALGORITHM") or defaults.jwt_algorithm).upper(),
            jwt_public_key=env.get("JWT_PUBLIC_KEY") or None,
            jwt_jwks_url=env.get("JWT_JWKS_URL") or None,
            jwt_audience=env.get("JWT_AUDIENCE") or None,
            jwt_issuer=env.get("JWT_ISSUER") or None,
            allowed_origins=_list(env.get("LIVESPACE_ALLOWED_ORIGINS")),
            log_format=(env.get("LIVESPACE_LOG_FORMAT") or defaults.log_format).lower(),
            ws_deflate=(env.get("LIVESPACE_WS_DEFLATE") or "0").lower() in ("1", "true", "yes"),
            node_id=env.get("LIVESPACE_NODE_ID") or defaults.node_id,
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that would be unsafe or cannot work, with a clear message."""
        if self.jwt_algorithm not in ALGORITHMS:
            raise ConfigError(
                f"JWT_ALGORITHM must be one of {', '.join(ALGORITHMS)}, got {self.jwt_algorithm!r}"
            )
        if self.jwt_algorithm.startswith("HS"):
            if self.jwt_secret is not None and len(self.jwt_secret.encode()) < MIN_HS_SECRET:
                raise ConfigError(
                    f"JWT_SECRET is {len(self.jwt_secret.encode())} bytes; {self.jwt_algorithm} "
                    f"needs at least {MIN_HS_SECRET} (try: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                )
        elif not (self.jwt_public_key or self.jwt_jwks_url):
            raise ConfigError(
                f"JWT_ALGORITHM={self.jwt_algorithm} needs JWT_PUBLIC_KEY or JWT_JWKS_URL"
            )
        if self.log_format not in ("line", "json"):
            raise ConfigError(f"LIVESPACE_LOG_FORMAT must be line or json, got {self.log_format!r}")
        if not self.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must start with sqlite:/// or postgresql://")

    def with_secret(self) -> Settings:
        """For HS algorithms without JWT_SECRET: the secret kept in the data dir.

        Generated once (48 random bytes, file mode 0600) and reused by ``serve`` and
        ``token``; never a built-in default.
        """
        if self.jwt_secret or not self.jwt_algorithm.startswith("HS"):
            return self
        path = self.data_dir / "jwt_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        secret = path.read_text().strip()
        if len(secret.encode()) < MIN_HS_SECRET:
            raise ConfigError(f"{path} holds a secret shorter than {MIN_HS_SECRET} bytes")
        return replace(self, jwt_secret=secret)
