"""Settings refuse what cannot work, and the data-dir secret is made once and kept."""

from __future__ import annotations

import stat
from dataclasses import fields
from pathlib import Path

import pytest

from livespace.config import MIN_HS_SECRET, NUMBERS, ConfigError, Settings


def test_defaults_from_empty_env(tmp_path: Path) -> None:
    settings = Settings.from_env({"LIVESPACE_DATA_DIR": str(tmp_path)})
    assert settings.jwt_algorithm == "HS256"
    assert settings.jwt_secret is None
    assert settings.database_url == f"sqlite:///{tmp_path / 'livespace.db'}"
    assert settings.redis_url is None


def test_short_hs_secret_refused() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"JWT_SECRET": "short"})
    message = str(info.value)
    assert "JWT_SECRET" in message and str(MIN_HS_SECRET) in message
    assert "secrets.token_urlsafe" in message  # says how to make a good one


def test_long_hs_secret_accepted() -> None:
    secret = "k" * MIN_HS_SECRET
    assert Settings.from_env({"JWT_SECRET": secret}).with_secret().jwt_secret == secret


def test_secret_generated_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings.from_env({"LIVESPACE_DATA_DIR": str(data_dir)})
    first = settings.with_secret()
    path = data_dir / "jwt_secret"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.jwt_secret is not None and len(first.jwt_secret) >= MIN_HS_SECRET
    again = Settings.from_env({"LIVESPACE_DATA_DIR": str(data_dir)}).with_secret()
    assert again.jwt_secret == first.jwt_secret
    other = Settings.from_env({"LIVESPACE_DATA_DIR": str(tmp_path / "other")}).with_secret()
    assert other.jwt_secret != first.jwt_secret  # random, not a built-in default


def test_configured_secret_wins_over_data_dir(tmp_path: Path) -> None:
    secret = "c" * 40
    env = {"LIVESPACE_DATA_DIR": str(tmp_path), "JWT_SECRET": secret}
    assert Settings.from_env(env).with_secret().jwt_secret == secret
    assert not (tmp_path / "jwt_secret").exists()


def test_short_secret_in_data_dir_refused(tmp_path: Path) -> None:
    (tmp_path / "jwt_secret").write_text("tiny")
    with pytest.raises(ConfigError, match="shorter"):
        Settings.from_env({"LIVESPACE_DATA_DIR": str(tmp_path)}).with_secret()


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_asymmetric_without_key_refused(algorithm: str) -> None:
    with pytest.raises(ConfigError, match="JWT_PUBLIC_KEY or JWT_JWKS_URL"):
        Settings.from_env({"JWT_ALGORITHM": algorithm})


def test_asymmetric_with_jwks_url_accepted() -> None:
    settings = Settings.from_env(
        {"JWT_ALGORITHM": "es256", "JWT_JWKS_URL": "https://idp.example/jwks.json"}
    )
    assert settings.jwt_algorithm == "ES256"
    assert settings.with_secret() is settings  # no secret file for asymmetric keys


def test_unknown_algorithm_refused() -> None:
    with pytest.raises(ConfigError, match="JWT_ALGORITHM"):
        Settings.from_env({"JWT_ALGORITHM": "none"})


@pytest.mark.parametrize(
    ("name", "raw", "needle"),
    [
        ("LIVESPACE_MAX_FRAME", "big", "must be an integer"),
        ("LIVESPACE_MAX_FRAME", "10", "must be >="),
        ("LIVESPACE_RETENTION_DAYS", "1.5", "must be an integer"),
        ("LIVESPACE_MAX_CONNECTIONS_PER_USER", "0", "must be >="),
        ("LIVESPACE_RATE_LIMIT", "fast", "must be a number"),
        ("JWT_LEEWAY", "-1", "must be >="),
        ("JWT_LEEWAY", "nan", "must be >="),
    ],
)
def test_bad_numbers_refused(name: str, raw: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: raw})
    assert name in str(info.value) and needle in str(info.value)


def test_bad_database_url_refused() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": "mysql://x"})


def test_allowed_origins_parsed() -> None:
    settings = Settings.from_env({"LIVESPACE_ALLOWED_ORIGINS": " https://a.example, ,https://b"})
    assert settings.allowed_origins == ("https://a.example", "https://b")


def test_defaults_are_the_fields_own_and_every_number_is_read() -> None:
    node = "n1"
    read = Settings.from_env({"LIVESPACE_NODE_ID": node})
    assert read == Settings(node_id=node, database_url="sqlite:///.livespace/livespace.db")
    numeric = {f.name for f in fields(Settings) if f.type in ("int", "float")}
    assert set(NUMBERS) == numeric
    for name, (variable, lo) in NUMBERS.items():
        raised = Settings.from_env({variable: str(int(lo) + 7)})
        assert getattr(raised, name) == int(lo) + 7, variable
