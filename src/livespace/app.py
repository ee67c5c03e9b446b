"""The ASGI application and how to serve it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from livespace import __version__
from livespace.api import analytics, contacts, health, notes, page, stream, workspaces
from livespace.api.deps import install_error_handlers
from livespace.api.socket import WorkspaceSocket
from livespace.config import ConfigError, Settings
from livespace.front import STATE_KEY, Front, FrontProtocol
from livespace.node import Node


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        node = await Node.start(settings)
        app.state.node = node

        def workspace_socket(proto: Any, request: Any, workspace_id: str,
                             query: str) -> WorkspaceSocket:
            return WorkspaceSocket(node, proto, request, workspace_id, query)

        front = Front(settings, workspace_socket, app, metrics=node.metrics)
        node.front = front
        front.start()
        # ASGI lifespan state: uvicorn gives it to every FrontProtocol as ``app_state``
        state = {STATE_KEY: front}
        front.app_state = state
        try:
            yield state
        finally:
            await node.stop()
            await front.stop()

    app = FastAPI(
        title="livespace",
        version=__version__,
        description="Real-time collaboration server for shared contact workspaces. "
        "WebSocket endpoint: GET /ws/workspace/{workspace_id} (see docs/protocol.md).",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (health, workspaces, contacts, stream, analytics, notes, page):
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and for ``serve --workers N``."""
    return create_app(Settings.from_env())


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8001,
          workers: int = 1, log_level: str = "INFO") -> None:
    import uvicorn

    from livespace.logs import log_config

    if workers > 1 and (settings.redis_url is None or settings.database_url.startswith("sqlite")):
        raise ConfigError("--workers > 1 needs REDIS_URL (fan-out) and PostgreSQL (DATABASE_URL)")
    settings = settings.with_secret()  # generate the data-dir secret once, before workers fork
    if workers > 1:  # each worker's metrics in one directory, summed by any scrape
        from livespace.metrics import prepare_multiprocess

        prepare_multiprocess(settings.data_dir)
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        # uvicorn's protocol-class seam: every WebSocket upgrade goes to the front
        ws=FrontProtocol,
        log_config=log_config(log_level, settings.log_format),  # uvicorn applies it last
        log_level=log_level.lower(),
        timeout_graceful_shutdown=10,
        proxy_headers=False,
        server_header=False,
    )
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    if workers > 1:
        uvicorn.run("livespace.app:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)

