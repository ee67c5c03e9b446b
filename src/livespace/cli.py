"""``livespace``: serve, migrate, mint dev tokens, manage workspaces, demo, clean up, bench.

Every command reads :class:`~livespace.config.Settings` from the environment
(DESIGN.md section 5). A user error (bad setting, unknown workspace, bad token) prints
``livespace: error: <message>`` and exits 2, without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from livespace.auth import MAX_USER_ID, AuthError, TokenVerifier, parse_ttl
from livespace.codes import Error, Problem
from livespace.commands import ROLES
from livespace.config import ConfigError, Settings
from livespace.store import Store, cleanup, open_store

Command = Callable[[argparse.Namespace], int]
T = TypeVar("T")


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _user_id(raw: str) -> str:
    if not raw or len(raw) > MAX_USER_ID:
        raise argparse.ArgumentTypeError(f"a user id is 1-{MAX_USER_ID} characters")
    return raw


def _ttl(raw: str) -> int:
    try:
        return parse_ttl(raw)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@asynccontextmanager
async def _migrated_store(settings: Settings) -> AsyncIterator[Store]:
    store = await open_store(settings.database_url)
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


# --- commands --------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from livespace.app import serve
    from livespace.logs import setup_logging

    settings = Settings.from_env().with_secret()
    setup_logging(args.log_level, settings.log_format)
    applied = _run(_migrate(settings))
    if applied:
        logging.getLogger("livespace.cli").info("applied migrations %s", ", ".join(applied))
    serve(settings, host=args.host, port=args.port, workers=args.workers,
          log_level=args.log_level)
    return 0


async def _migrate(settings: Settings) -> list[str]:
    store = await open_store(settings.database_url)
    try:
        return await store.migrate()
    finally:
        await store.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    applied = _run(_migrate(Settings.from_env()))
    for version in applied:
        print(f"applied {version}")
    if not applied:
        print("up to date")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.jwt_algorithm.startswith("HS"):
        raise ConfigError(
            f"livespace token mints HS* tokens only; JWT_ALGORITHM is {settings.jwt_algorithm} "
            "(get tokens from your identity provider)"
        )
    verifier = TokenVerifier(settings.with_secret())
    print(verifier.mint(args.user, email=args.email, name=args.name, ttl_s=args.ttl))
    return 0


def _on_store(body: Callable[[Store, argparse.Namespace], Awaitable[Any]]) -> Command:
    """A command that runs ``body`` on the environment's store (migrated first) and
    prints what it returns as JSON."""

    @functools.wraps(body)
    def command(args: argparse.Namespace) -> int:
        async def go() -> Any:
            async with _migrated_store(Settings.from_env()) as store:
                return await body(store, args)

        _print_json(_run(go()))
        return 0

    return command


async def _existing(store: Store, workspace_id: str) -> None:
    if await store.get_workspace(workspace_id) is None:
        raise Problem(Error.NOT_FOUND, f"workspace {workspace_id} not found")


@_on_store
async def cmd_workspace_create(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    return (await store.create_workspace(args.name, args.owner)).to_json()


@_on_store
async def cmd_member_add(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    await _existing(store, args.workspace)
    return (await store.set_member(args.workspace, args.user, args.role)).to_json()


@_on_store
async def cmd_member_remove(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    await _existing(store, args.workspace)
    if not await store.remove_member(args.workspace, args.user):
        raise Problem(
            Error.NOT_FOUND, f"{args.user} is not a member of workspace {args.workspace}"
        )
    print(
        "livespace: note: sockets this user has open on a running server stay open; "
        f"use DELETE /api/workspaces/{args.workspace}/members/{args.user} "
        "to revoke access live",
        file=sys.stderr,
    )
    return {"workspace_id": args.workspace, "user_id": args.user, "removed": True}


@_on_store
async def cmd_cleanup(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    days = args.retention_days
    if days is None:
        days = Settings.from_env().retention_days
    cutoff, counts = await cleanup(store, days)
    deleted = {f"{kind}_deleted": n for kind, n in counts.items()}
    return {**deleted, "cutoff": cutoff, "retention_days": days}


@_on_store
async def cmd_epoch_renew(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """After restoring a backup (or any rewrite of the log behind the servers' back):
    clients holding the old epoch are told ``resync_required`` on their next resume."""
    if args.workspace is not None:
        await _existing(store, args.workspace)
    return {"workspaces_renewed": await store.renew_epoch(args.workspace)}


def cmd_demo(args: argparse.Namespace) -> int:
    from livespace import demo

    settings = Settings.from_env()
    url = demo.base_url(args.url)

    async def go() -> demo.Demo:
        async with _migrated_store(settings) as store:
            return await demo.create(store, settings, name=args.name, url=url, ttl_s=args.ttl)

    print(demo.describe(_run(go()), args.ttl))
    return 0


def cmd_bench(argv: Sequence[str]) -> int:
    """Run the benchmark, a development tool in the source checkout's ``bench/`` folder.

    It is not in the wheel: from an installed package this says where to get it.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "__main__.py").is_file() or not (root / "pyproject.toml").is_file():
        raise ConfigError(
            "livespace bench runs from a source checkout (python -m bench in the repository); "
            "it is not part of the installed package"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    bench = importlib.import_module("bench")
    result = bench.main(list(argv))
    return int(result or 0)


# --- parser ----------------------------------------------------------------------------


def _whole(raw: str, least: int = 1) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _positive(raw: str) -> int:
    return _whole(raw)


def _days(raw: str) -> int:
    """0 keeps nothing older than now (what a test or a full reset wants)."""
    return _whole(raw, 0)


def _port(raw: str) -> int:
    value = _positive(raw)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livespace",
        description="Real-time collaboration server for shared contact workspaces.",
        epilog="Configuration comes from the environment: JWT_SECRET, JWT_ALGORITHM, "
        "DATABASE_URL, REDIS_URL, LIVESPACE_DATA_DIR, ... (see the docs).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="run the server (migrates first)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8001)
    p.add_argument("--workers", type=_positive, default=1,
                   help="processes; more than 1 needs PostgreSQL and Redis")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("token", help="mint a development token with the configured secret")
    p.add_argument("--user", required=True, type=_user_id, help="user id (sub and user_id)")
    p.add_argument("--email")
    p.add_argument("--name")
    p.add_argument("--ttl", type=_ttl, default=3600, help="lifetime: 45s, 30m, 1h, 2d (1h)")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("workspace", help="manage workspaces")
    ws = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = ws.add_parser("create", help="create a workspace and make --owner its owner")
    c.add_argument("name")
    c.add_argument("--owner", required=True, type=_user_id)
    c.set_defaults(func=cmd_workspace_create)

    p = sub.add_parser("member", help="manage workspace members")
    mem = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = mem.add_parser("add", help="add a member or change their role")
    a.add_argument("workspace")
    a.add_argument("user", type=_user_id)
    a.add_argument("--role", choices=ROLES, default="member")
    a.set_defaults(func=cmd_member_add)
    r = mem.add_parser("remove", help="remove a member (open sockets are not closed)")
    r.add_argument("workspace")
    r.add_argument("user", type=_user_id)
    r.set_defaults(func=cmd_member_remove)

    p = sub.add_parser("cleanup", help="delete old events, idempotency refs and sessions")
    p.add_argument("--retention-days", type=_days, default=None,
                   help="default: LIVESPACE_RETENTION_DAYS (30)")
    p.set_defaults(func=cmd_cleanup)

    p = sub.add_parser("epoch", help="log epochs (run `epoch renew` after restoring a backup)")
    ep = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = ep.add_parser("renew", help="new epochs: resuming clients reload their snapshot")
    e.add_argument("--workspace", help="only this workspace (default: every one)")
    e.set_defaults(func=cmd_epoch_renew)

    p = sub.add_parser("demo", help="seed a demo workspace and print page links for two people")
    p.add_argument("--url", help="the server's base URL as a browser reaches it "
                   "(default: $LIVESPACE_URL or http://127.0.0.1:8001)")
    p.add_argument("--name", default="Acme demo", help="the workspace's name (Acme demo)")
    p.add_argument("--ttl", type=_ttl, default=12 * 3600,
                   help="how long the links sign in: 30m, 12h, 2d (12h)")
    p.set_defaults(func=cmd_demo)

    # parsed by bench/ itself (see main); listed here for --help
    sub.add_parser("bench", help="load generator and scenarios (livespace bench --help)",
                   add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list[:1] == ["bench"]:
            return cmd_bench(args_list[1:])
        args = build_parser().parse_args(args_list)
        func: Command = args.func
        return func(args)
    except (ConfigError, AuthError) as err:
        return _fail(str(err))
    except Problem as err:
        return _fail(err.message)
    except KeyboardInterrupt:
        return 130
    except OSError as err:  # database or network unreachable: an outage, not a bug
        return _fail(f"{type(err).__name__}: {err}", code=1)


def _fail(message: str, code: int = 2) -> int:
    print(f"livespace: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
